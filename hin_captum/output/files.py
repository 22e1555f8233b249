"""One friend file per input file: the relevance of every entry as a ROOT tree, written chunk by chunk.

The friend tree has exactly one entry per entry of its input tree, in order, so
``input_tree.AddFriend("relevance", "<stem>.root")`` lines the entries up; entries
the reader dropped have ``explained == 0`` and no edges. Per-track branches are
jagged over ``rel_n_tracks``, one value per track of the input entry, in the order
of the input tracks: tracks that were not explained (a dropped entry's, or those a
model's padding length cut off) are 0, and ``rel_n_explained`` counts the others;
per-edge branches are jagged over ``rel_n_edges`` with ``edge_src`` and ``edge_dst``
as positions in the input track arrays. The run's description (model, method,
options, input file) is stored beside the tree as a JSON string, so a later run can
tell whether the file is its own.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import torch
import uproot

from ..data.root import JetChunk
from ..data.schema import JetSchema
from ..util import atomic_path, temporary_beside, writing_into
from .summary import RelevanceSummary
from .table import RelevanceTable

TRACK_COUNTER = "rel_n_tracks"
EXPLAINED_COUNTER = "rel_n_explained"
EDGE_COUNTER = "rel_n_edges"
TRACK_PREFIX = "rel_"
SUMMARY_FOLDER = "summary"
"""Inside each friend file: its own summary histograms."""
METADATA_KEY = "hin_captum"
"""Key of the JSON string that describes the run, beside the friend tree."""
COPY_FORMAT = "hin_captum.relevance/2"
NOT_EXPLAINED = -1
"""Class-index branches (``target``, ``predicted``) of entries that were not explained."""


def friend_arrays(table: RelevanceTable, chunk: JetChunk) -> dict[str, ak.Array | np.ndarray]:
    """The branches for the entries of ``chunk``, ``table`` holding its usable jets in order."""
    n_rows = chunk.num_entries
    rows = np.flatnonzero(chunk.usable)

    def per_jet(values: np.ndarray, fill: float | int, dtype: type) -> np.ndarray:
        column = np.full(n_rows, fill, dtype=dtype)
        column[rows] = values
        return column

    def jagged(values: Mapping[str, np.ndarray], per_row: np.ndarray) -> ak.Array:
        return ak.unflatten(ak.zip(dict(values), depth_limit=1), per_jet(per_row, 0, np.int64))

    def per_input_track(values: Mapping[str, np.ndarray]) -> ak.Array:
        """Per-track values placed at their tracks' positions among every input track of every entry, 0 elsewhere."""
        if chunk.input_tracks is None:
            return jagged(values, table.tracks_per_jet)
        first = np.concatenate([[0], np.cumsum(chunk.input_tracks)])
        positions = first[rows][table.jet_of_track] + chunk.track_index
        spread = {}
        for name, column in values.items():
            spread[name] = np.zeros(int(first[-1]), dtype=np.float32)
            spread[name][positions] = column
        return ak.unflatten(ak.zip(spread, depth_limit=1), chunk.input_tracks)

    node = table.node
    arrays: dict[str, ak.Array | np.ndarray] = {
        "explained": per_jet(np.ones(table.num_jets, bool), False, bool),
        "entry": chunk.entry_start + np.arange(n_rows, dtype=np.int64),
        "target": per_jet(table.target, NOT_EXPLAINED, np.int32),
        "predicted": per_jet(table.prediction.argmax(1), NOT_EXPLAINED, np.int32),
        "output": per_jet(table.output, 0.0, np.float32),
        **{f"prob_{name}": per_jet(table.prediction[:, k], 0.0, np.float32) for k, name in enumerate(table.classes)},
        "rel_total": per_jet(table.per_jet_sum(node.sum(1)), 0.0, np.float32),
        **({} if table.absorbed is None else {"rel_absorbed": per_jet(table.absorbed, 0.0, np.float32)}),
        EXPLAINED_COUNTER: per_jet(table.tracks_per_jet, 0, np.int32),
        "tracks": per_input_track(
            {**{TRACK_PREFIX + name: node[:, k] for k, name in enumerate(table.features)},
             f"{TRACK_PREFIX}sum": node.sum(1)}),
    }
    if table.has_edges:
        arrays["edges"] = jagged(
            {"edge_src": table.edge_src.astype(np.int32), "edge_dst": table.edge_dst.astype(np.int32),
             "edge_relevance": table.edge_relevance, "edge_score": table.edge_score,
             **{f"edge_rel_{name}": values for name, values in (table.edge_parts or {}).items()}},
            table.edges_per_jet,
        )
    return arrays


class FriendFile:
    """One input file's friend file, and its only writer: the tree extended chunk by chunk under a temporary name,
    then the file's summary (:data:`SUMMARY_FOLDER`) and description, and the PyTorch copy beside it; renamed into
    place when complete, removed when abandoned, so a failed or killed run leaves no partial file."""

    def __init__(self, path: str | Path, tree: str, basket_entries: int) -> None:
        self.path, self.name, self.basket_entries = Path(path), tree, basket_entries
        with writing_into(self.path.parent):
            self.temporary = temporary_beside(self.path)
            self.file = uproot.recreate(self.temporary)
        self.tree = None
        self.entries = 0

    def extend(self, arrays: Mapping[str, ak.Array | np.ndarray]) -> None:
        """Append entries given as branches (:func:`friend_arrays` or :func:`tree_arrays`)."""
        with self._or_abandon():
            n_entries = len(next(iter(arrays.values())))
            if self.tree is None:
                counters = {"tracks": TRACK_COUNTER, "edges": EDGE_COUNTER}
                self.tree = self.file.mktree(
                    self.name,
                    {name: value.type if isinstance(value, ak.Array) else value.dtype for name, value in arrays.items()},
                    counter_name=counters.__getitem__,
                    field_name=lambda _, inner: inner,
                )
            for start in range(0, n_entries, self.basket_entries):
                self.tree.extend({name: value[start : start + self.basket_entries] for name, value in arrays.items()})
            self.entries += n_entries

    def finish(self, summary: RelevanceSummary | None, metadata: Mapping[str, Any],
               copy: RelevanceTable | None = None) -> None:
        """Write the summary and the run's description (JSON, the last write of a complete file), rename the file
        into place, and with ``copy`` write its table as ``<stem>.pt`` (``torch.load(..., weights_only=True)``)."""
        with self._or_abandon():
            if summary is not None:
                summary.write_into(self.file, SUMMARY_FOLDER)
            self.file[METADATA_KEY] = json.dumps({**metadata, "entries": self.entries}, sort_keys=True, default=str)
            self.file.close()
            os.replace(self.temporary, self.path)
            if copy is not None:
                with atomic_path(self.path.with_suffix(".pt")) as temporary:
                    torch.save(torch_copy(copy, {"input": metadata.get("input", {}).get("path", ""),
                                                 "method": metadata.get("method", "")}), temporary)

    def abandon(self) -> None:
        """Close and remove the temporary file (a failed or interrupted file leaves nothing)."""
        try:
            self.file.close()
        except Exception:  # noqa: BLE001 - closing a file on a full disk may fail too; it is removed anyway
            pass
        self.temporary.unlink(missing_ok=True)

    @contextmanager
    def _or_abandon(self) -> Iterator[None]:
        try:
            with writing_into(self.path.parent):
                yield
        except BaseException:
            self.abandon()
            raise


def tree_arrays(arrays: ak.Array) -> dict[str, ak.Array | np.ndarray]:
    """A friend tree's entries as read back by uproot, grouped again as :func:`friend_arrays` gives them."""
    edge_fields = ("edge_src", "edge_dst", "edge_relevance", "edge_score",
                   *(name for name in arrays.fields if name.startswith("edge_rel_")))
    track_fields = [name for name in arrays.fields if name.startswith(TRACK_PREFIX) and name not in (
        TRACK_COUNTER, EDGE_COUNTER, EXPLAINED_COUNTER, "rel_total", "rel_absorbed")]
    grouped: dict[str, ak.Array | np.ndarray] = {
        name: ak.to_numpy(arrays[name]) for name in arrays.fields
        if name not in (*track_fields, *edge_fields, TRACK_COUNTER, EDGE_COUNTER)}
    grouped["tracks"] = ak.zip({name: arrays[name] for name in track_fields}, depth_limit=2)
    if "edge_src" in arrays.fields:
        grouped["edges"] = ak.zip({name: arrays[name] for name in edge_fields}, depth_limit=2)
    return grouped


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The description a finished friend file records, or None if it holds none (or cannot be read)."""
    try:
        with uproot.open(path) as file:
            if METADATA_KEY not in file:
                return None
            return json.loads(str(file[METADATA_KEY]))
    except (OSError, ValueError, KeyError):
        return None


def torch_copy(table: RelevanceTable, metadata: Mapping[str, Any]) -> dict[str, Any]:
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


def read_friend_jets(path: str | Path, tree: str, chunks: list[JetChunk], method: str,
                     schema: JetSchema) -> RelevanceTable:
    """The relevance table of the jets of ``chunks`` (one usable jet each, read again from the input) back from
    their friend file: relevance from the friend tree, features and labels from the input."""
    tables = []
    with uproot.open(path) as file:
        friend = file[tree]
        for chunk in chunks:
            row = friend.arrays(entry_start=int(chunk.entry[0]), entry_stop=int(chunk.entry[0]) + 1)[0]
            template = RelevanceTable.empty(method, schema)
            node = np.stack([row[TRACK_PREFIX + name].to_numpy() for name in template.features], axis=1)
            node = node[chunk.track_index]  # the explained tracks among the input's
            has_edges = "edge_src" in row.fields
            tables.append(RelevanceTable(
                method=method, features=template.features, classes=template.classes, x=chunk.x,
                node=node.astype(np.float32), tracks_per_jet=chunk.tracks_per_jet,
                output=np.array([row["output"]], np.float32),
                prediction=np.array([[row[f"prob_{name}"] for name in template.classes]], np.float32),
                target=np.array([row["target"]], np.int64), label=chunk.label, file_index=np.array([chunk.file_index]),
                entry=chunk.entry, spectators=dict(chunk.spectators),
                edges_per_jet=np.array([len(row["edge_src"]) if has_edges else 0]),
                absorbed=np.array([row["rel_absorbed"]], np.float32) if "rel_absorbed" in row.fields else None,
                edge_src=row["edge_src"].to_numpy() if has_edges else None,
                edge_dst=row["edge_dst"].to_numpy() if has_edges else None,
                edge_relevance=row["edge_relevance"].to_numpy() if has_edges else None,
                edge_score=row["edge_score"].to_numpy() if has_edges else None,
            ))
    return RelevanceTable.concatenate(tables) if tables else RelevanceTable.empty(method, schema)
