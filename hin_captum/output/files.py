"""Write a :class:`RelevanceTable` as a ROOT friend tree of the input ntuples and as a PyTorch copy.

The friend tree has one entry per input entry the run read, in the order of the
input files (entry ``k`` of the first file, then of the second, ...), so
``input_tree.AddFriend("relevance", "relevance.root")`` lines the entries up;
jets that were not explained (dropped by the reader) have ``explained == 0``,
no tracks and no edges. Per-track branches are jagged over ``rel_n_tracks`` in the
order of the input tracks; per-edge branches are jagged over ``rel_n_edges`` with
``edge_src`` and ``edge_dst`` as positions in the input track arrays.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import torch
import uproot

from ..cli import atomic_path
from .table import RelevanceTable

TRACK_COUNTER = "rel_n_tracks"
EDGE_COUNTER = "rel_n_edges"
TRACK_PREFIX = "rel_"
COPY_FORMAT = "hin_captum.relevance/1"
NOT_EXPLAINED = -1
"""Class-index branches (``target``, ``predicted``) of entries that were not explained."""


def friend_rows(table: RelevanceTable, entries_per_file: Sequence[int], n_rows: int) -> np.ndarray:
    """The friend-tree entry of every jet of ``table``: its entry counted over the input files in order."""
    offsets = np.concatenate([[0], np.cumsum(entries_per_file)[:-1]]).astype(np.int64)
    rows = offsets[table.file_index] + table.entry
    if len(rows) and (np.any(np.diff(rows) <= 0) or rows[-1] >= n_rows or rows[0] < 0):
        raise ValueError(f"jets must come in input order within the first {n_rows} input entries")
    return rows


def friend_arrays(
    table: RelevanceTable, entries_per_file: Sequence[int], n_rows: int
) -> dict[str, ak.Array | np.ndarray]:
    """The branches of the friend tree: one entry per input entry in ``[0, n_rows)``."""
    rows = friend_rows(table, entries_per_file, n_rows)
    ends = np.cumsum(entries_per_file)
    row_file = np.searchsorted(ends, np.arange(n_rows), side="right")
    row_entry = np.arange(n_rows) - np.concatenate([[0], ends])[row_file]

    def per_jet(values: np.ndarray, fill: float | int, dtype: type) -> np.ndarray:
        column = np.full(n_rows, fill, dtype=dtype)
        column[rows] = values
        return column

    def jagged(values: Mapping[str, np.ndarray], per_row: np.ndarray) -> ak.Array:
        return ak.unflatten(ak.zip(dict(values), depth_limit=1), per_jet(per_row, 0, np.int64))

    node = table.node
    arrays: dict[str, ak.Array | np.ndarray] = {
        "explained": per_jet(np.ones(table.num_jets, bool), False, bool),
        "file_index": row_file.astype(np.int32),
        "entry": row_entry.astype(np.int64),
        "target": per_jet(table.target, NOT_EXPLAINED, np.int32),
        "predicted": per_jet(table.prediction.argmax(1), NOT_EXPLAINED, np.int32),
        "output": per_jet(table.output, 0.0, np.float32),
        **{f"prob_{name}": per_jet(table.prediction[:, k], 0.0, np.float32) for k, name in enumerate(table.classes)},
        "rel_total": per_jet(table.per_jet_sum(node.sum(1)), 0.0, np.float32),
        **({} if table.absorbed is None else {"rel_absorbed": per_jet(table.absorbed, 0.0, np.float32)}),
        "tracks": jagged(
            {**{TRACK_PREFIX + name: node[:, k] for k, name in enumerate(table.features)},
             f"{TRACK_PREFIX}sum": node.sum(1)},
            table.tracks_per_jet,
        ),
    }
    if table.has_edges:
        arrays["edges"] = jagged(
            {"edge_src": table.edge_src.astype(np.int32), "edge_dst": table.edge_dst.astype(np.int32),
             "edge_relevance": table.edge_relevance, "edge_score": table.edge_score},
            table.edges_per_jet,
        )
    return arrays


def write_friend_tree(
    path: Path, table: RelevanceTable, entries_per_file: Sequence[int], n_rows: int, tree: str, basket_entries: int
) -> Path:
    """Write the friend tree ``tree`` to ``path`` (not atomically: callers write to a temporary path)."""
    arrays = friend_arrays(table, entries_per_file, n_rows)
    counters = {"tracks": TRACK_COUNTER, "edges": EDGE_COUNTER}
    with uproot.recreate(path) as file:
        output = file.mktree(
            tree,
            {name: value.type if isinstance(value, ak.Array) else value.dtype for name, value in arrays.items()},
            counter_name=counters.__getitem__,
            field_name=lambda _, inner: inner,
        )
        for start in range(0, n_rows, basket_entries):
            output.extend({name: value[start : start + basket_entries] for name, value in arrays.items()})
    return path


def torch_copy(table: RelevanceTable, rows: np.ndarray, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The table as a dict of tensors and plain values, loadable with ``torch.load(..., weights_only=True)``."""
    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values))

    def pointers(per_jet: np.ndarray) -> torch.Tensor:
        return tensor(np.concatenate([[0], np.cumsum(per_jet)]).astype(np.int64))

    copy: dict[str, Any] = {
        "format": COPY_FORMAT,
        "method": table.method,
        "features": list(table.features),
        "classes": list(table.classes),
        "metadata": dict(metadata),
        "x": tensor(table.x),
        "node": tensor(table.node),
        "track_ptr": pointers(table.tracks_per_jet),
        "row": tensor(rows),
        "file_index": tensor(table.file_index),
        "entry": tensor(table.entry),
        "label": tensor(table.label),
        "target": tensor(table.target),
        "output": tensor(table.output),
        "prediction": tensor(table.prediction),
        **{name: tensor(values) for name, values in table.spectators.items()},
        **({} if table.absorbed is None else {"absorbed": tensor(table.absorbed)}),
    }
    if table.has_edges:
        copy.update(
            edge_ptr=pointers(table.edges_per_jet),
            edge_index=tensor(np.stack([table.edge_src, table.edge_dst])),
            edge_relevance=tensor(table.edge_relevance),
            edge_score=tensor(table.edge_score),
        )
    return copy


def write_relevance(
    folder: str | os.PathLike,
    table: RelevanceTable,
    entries_per_file: Sequence[int],
    n_rows: int,
    *,
    tree: str,
    basket_entries: int,
    metadata: Mapping[str, Any],
) -> list[Path]:
    """Write ``relevance.root`` (the friend tree) and ``relevance.pt`` into ``folder``.

    Both files appear together or not at all: each is written to a temporary file,
    and both are renamed into place only once both are complete.
    """
    folder = Path(folder)
    paths = [folder / "relevance.root", folder / "relevance.pt"]
    rows = friend_rows(table, entries_per_file, n_rows)
    with ExitStack() as stack:
        root, copy = [stack.enter_context(atomic_path(path)) for path in paths]
        write_friend_tree(root, table, entries_per_file, n_rows, tree, basket_entries)
        torch.save(torch_copy(table, rows, metadata), copy)
    return paths
