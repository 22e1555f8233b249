"""Jets written back as an ntuple of their schema: the tree, the track branches with their counter, the label and
spectator branches, so that :func:`~hin_captum.data.read_root` and ``hin-captum attribute`` read them as they
read the input."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from torch_geometric.data import Batch

from ..util import InputError, atomic_path, writing_into
from .schema import CMS_HBB, JetSchema


def write_jets(path: str | Path, jets: Batch, classes: Sequence[int], schema: JetSchema = CMS_HBB,
               branches: Mapping[str, np.ndarray] | None = None, tree: str | None = None) -> Path:
    """Write ``jets`` (``x`` in the schema's column order, one graph per jet) to ``path`` atomically.

    Each repeated feature branch is written once, from its first column. The label branches
    say ``classes[k]`` for jet k: the schema's H->bb branches for that class, else QCD
    (``qcd_sample`` and the last of ``qcd_flavours``). Spectators come from the jets'
    attributes of the same name; ``branches`` adds per-jet branches of its own. ``tree``
    defaults to the schema's.
    """
    path = Path(path)
    n_jets = jets.num_graphs
    if len(classes) != n_jets:
        raise InputError(f"{len(classes)} classes for {n_jets} jets: give one class per jet")
    counts = np.bincount(jets.batch.numpy(), minlength=n_jets)
    x = jets.x.detach().cpu().numpy().astype(np.float32)
    names = list(dict.fromkeys(schema.features))
    tracks = ak.unflatten(ak.zip({name: x[:, schema.features.index(name)] for name in names}), counts)
    signal = np.asarray(classes) == schema.classes.index(_signal(schema))
    labels = {name: np.zeros(n_jets, np.int32) for key in ("qcd_sample", "qcd_flavours", "hbb")
              for name in schema.labels[key]}
    for name in schema.labels["hbb"]:
        labels[name] = signal.astype(np.int32)
    for name in (*schema.labels["qcd_sample"], schema.labels["qcd_flavours"][-1]):
        labels[name] = (~signal).astype(np.int32)
    spectators = {name: jets[name].detach().cpu().numpy().reshape(n_jets).astype(np.float32)
                  for name in schema.spectators}
    columns = {"tracks": tracks, **labels, **spectators, **dict(branches or {})}
    with writing_into(path.parent), atomic_path(path) as temporary, uproot.recreate(temporary) as file:
        file.mktree(tree or schema.tree, {name: _type(value) for name, value in columns.items()},
                    counter_name=lambda _: schema.track_counter, field_name=lambda _, inner: inner)
        file[tree or schema.tree].extend(columns)
    return path


def _signal(schema: JetSchema) -> str:
    """The class the schema's H->bb label branches mark (its last class)."""
    return schema.classes[-1]


def _type(value: object) -> object:
    return value.type if isinstance(value, ak.Array) else np.asarray(value).dtype
