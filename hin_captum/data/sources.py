"""Jets from a ``data:`` config section: the sanity-check set, toy ROOT jets, or ROOT files."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from torch_geometric.data import Data

from ..errors import InputError
from .root import read_root
from .synthetic import make_sanity_jets
from .toy import write_toy_root

SOURCES = ("sanity", "toy", "root")
_READER_OPTIONS = ("tree", "max_jets", "max_tracks", "track_sort_feature")


def load_jets(config: dict[str, Any]) -> tuple[list[Data], str]:
    """The jets a config section names, and a one-line description of where they came from."""
    source = config.get("source")
    if source == "sanity":
        jets = make_sanity_jets(int(config["n_jets"]), seed=int(config["seed"]), n_tracks=int(config.get("n_tracks", 10)))
        return jets, f"{len(jets)} sanity-check jets (seed {config['seed']})"
    options = {key: config[key] for key in _READER_OPTIONS if key in config}
    if source == "toy":  # written to a real ROOT file and read back, as users' files are
        with tempfile.TemporaryDirectory() as folder:
            path = write_toy_root(Path(folder) / "toy.root", int(config["n_jets"]), seed=int(config["seed"]))
            jets = read_root(path, **options)
        return list(jets.jets), f"toy jets (seed {config['seed']}): {jets.report.summary()}"
    if source == "root":
        jets = read_root(config["paths"], **options)
        return list(jets.jets), jets.report.summary()
    raise InputError(f"data source must be one of {', '.join(SOURCES)}, got {source!r}")
