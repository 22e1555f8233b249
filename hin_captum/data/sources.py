"""Jets from a ``data:`` config section: the sanity-check set, toy ROOT jets, ROOT files, or HIN-LRP's jets as arrays."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from ..util import InputError
from .graphs import JetGraph
from .root import read_root
from .synthetic import make_sanity_jets
from .toy import write_toy_root

SOURCES = ("sanity", "toy", "root", "npz", "weaver")
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
    if source == "weaver":  # ntuples read with a weaver data config: the inputs of a weaver model
        from ..config import bundled
        from .weaver import load_data_config, read_weaver_jets

        jets = read_weaver_jets(config["paths"], load_data_config(bundled(config["data_config"])), config.get("tree"),
                                config.get("max_jets"))
        return jets, f"{len(jets)} jets of {', '.join(map(str, config['paths']))} as {config['data_config']} reads them"
    if source == "npz":
        jets = [read_npz_jet(path) for path in config["paths"]]
        return jets, f"{len(jets)} jets from {', '.join(Path(p).name for p in config['paths'])}"
    raise InputError(f"data source must be one of {', '.join(SOURCES)}, got {source!r}")


def read_npz_jet(path: str | Path) -> JetGraph:
    """One jet saved as plain arrays (HIN-LRP's processed jets converted): ``x``, ``edge_index`` and one-hot ``y``.

    Read with ``allow_pickle=False``: only arrays, never objects.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x, edge_index, y = (np.asarray(arrays[key]) for key in ("x", "edge_index", "y"))
    except (KeyError, ValueError, OSError) as error:
        raise InputError(f"{path} is not a jet of arrays x, edge_index and y ({error})") from None
    return JetGraph(x=torch.as_tensor(x, dtype=torch.float32), edge_index=torch.as_tensor(edge_index, dtype=torch.long),
                    y=torch.as_tensor(y).reshape(1, -1).argmax(1))
