"""The relevance of one method on many jets, gathered batch by batch into flat numpy arrays."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch_geometric.data import Batch

from ..data.root import JetChunk
from ..data.schema import JetSchema
from ..methods import Explanation


@dataclass
class RelevanceTable:
    """One method's relevance for a list of jets: per jet, per track (rows of ``x``) and per edge.

    Edges are those of the explanation (the fully connected jet graphs, or the pairs a
    tagger builds itself: ParticleNet's kNN edges, ParT's particle pairs), jet after jet,
    with source and destination given as track positions within the jet; the ``edge_*`` arrays are None for
    methods without edge relevance. ``edge_relevance`` is the relevance through each
    edge summed over its entries (LRP: both halves of the edge MLP input), and
    ``edge_score`` the HIN-LRP paper's S_edge, which sums to 1 over a jet's edges.
    """

    method: str
    features: list[str]
    """Unique names of the feature columns (:attr:`hin_captum.data.schema.JetSchema.columns`)."""
    classes: list[str]
    x: np.ndarray
    """``[N, F]`` input features of every track."""
    node: np.ndarray
    """``[N, F]`` relevance of every input feature."""
    tracks_per_jet: np.ndarray
    output: np.ndarray
    """``[G]`` the explained logit."""
    prediction: np.ndarray
    """``[G, C]`` softmax of the model output."""
    target: np.ndarray
    label: np.ndarray
    file_index: np.ndarray
    entry: np.ndarray
    """``[G]`` entry of the jet in its input file."""
    spectators: dict[str, np.ndarray]
    edges_per_jet: np.ndarray
    absorbed: np.ndarray | None = None
    """``[G]`` for LRP: the part of the explained logit that biases and epsilon kept (logit minus summed relevance)."""
    edge_src: np.ndarray | None = None
    edge_dst: np.ndarray | None = None
    edge_relevance: np.ndarray | None = None
    edge_score: np.ndarray | None = None
    edge_parts: dict[str, np.ndarray] | None = None
    """Per edge, each named column of the explanation's edge relevance (ParT's pair features), when it has names."""

    @property
    def num_jets(self) -> int:
        return len(self.tracks_per_jet)

    @property
    def has_edges(self) -> bool:
        return self.edge_relevance is not None

    @property
    def jet_of_track(self) -> np.ndarray:
        """``[N]`` the jet of every track."""
        return np.repeat(np.arange(self.num_jets), self.tracks_per_jet)

    def per_jet_sum(self, per_track: np.ndarray) -> np.ndarray:
        """Sum over each jet's tracks of a per-track array ``[N, ...]``, in float64: ``[G, ...]``."""
        starts = np.cumsum(self.tracks_per_jet) - self.tracks_per_jet
        totals = np.add.reduceat(np.asarray(per_track, dtype=np.float64), np.minimum(starts, len(per_track) - 1))
        totals[self.tracks_per_jet == 0] = 0.0  # reduceat gives the next jet's first track for an empty jet
        return totals

    def absorbed_fraction(self) -> float:
        """``sum |absorbed| / sum |logit|`` over the jets: how much of the explained logits the relevance leaves out."""
        if self.absorbed is None:
            return float("nan")
        total = np.abs(self.output.astype(np.float64)).sum()
        return float(np.abs(self.absorbed.astype(np.float64)).sum() / total) if total > 0 else float("nan")

    def track_slice(self, jet: int) -> slice:
        """Rows of ``x`` and ``node`` that belong to ``jet``."""
        start = int(self.tracks_per_jet[:jet].sum())
        return slice(start, start + int(self.tracks_per_jet[jet]))

    def edge_slice(self, jet: int) -> slice:
        """Positions in the ``edge_*`` arrays that belong to ``jet``."""
        start = int(self.edges_per_jet[:jet].sum())
        return slice(start, start + int(self.edges_per_jet[jet]))

    @classmethod
    def from_explanation(cls, batch: Batch, explanation: Explanation, chunk: JetChunk, jets: slice,
                         schema: JetSchema) -> "RelevanceTable":
        """The table of the jets ``jets`` of ``chunk``, explained as ``batch`` (see :func:`jet_batch`)."""
        tracks = slice(int(chunk.tracks_per_jet[: jets.start].sum()), int(chunk.tracks_per_jet[: jets.stop].sum()))
        tracks_per_jet = chunk.tracks_per_jet[jets]
        edges = explanation.edge is not None

        def numpy(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().cpu().numpy()

        local, edges_per_jet = None, np.zeros_like(tracks_per_jet)
        if edges:  # the explanation's edges (a graph's, or the pairs a tagger builds itself), jet after jet
            edge_index = explanation.edge_index
            graph = batch.batch[edge_index[0]]
            local = numpy(edge_index - batch.ptr[graph])
            edges_per_jet = numpy(torch.bincount(graph, minlength=batch.num_graphs))
        return cls(
            method=explanation.method,
            features=schema.columns,
            classes=list(schema.classes),
            x=chunk.x[tracks],
            node=numpy(explanation.node).astype(np.float32),
            tracks_per_jet=tracks_per_jet,
            output=numpy(explanation.output).astype(np.float32),
            prediction=numpy(explanation.prediction).astype(np.float32),
            target=numpy(explanation.target),
            label=chunk.label[jets],
            file_index=np.full(len(tracks_per_jet), chunk.file_index, dtype=np.int64),
            entry=chunk.entry[jets],
            spectators={name: values[jets] for name, values in chunk.spectators.items()},
            edges_per_jet=edges_per_jet,
            absorbed=None if explanation.absorbed is None else numpy(explanation.absorbed).astype(np.float32),
            edge_src=local[0] if edges else None,
            edge_dst=local[1] if edges else None,
            edge_relevance=numpy(explanation.edge.flatten(1).sum(1)).astype(np.float32) if edges else None,
            edge_score=numpy(explanation.edge_score).astype(np.float32) if edges else None,
            edge_parts=None if not edges or not explanation.edge_names else {
                name: numpy(explanation.edge[:, k]).astype(np.float32) for k, name in enumerate(explanation.edge_names)},
        )

    @classmethod
    def empty(cls, method: str, schema: JetSchema, edges: bool = False, absorbed: bool = False,
              edge_names: Sequence[str] | None = None) -> "RelevanceTable":
        """A table of no jets, with edge (and named edge) and absorbed columns if the method gives them."""
        features = schema.columns
        zeros, nothing = np.zeros(0, dtype=np.int64), np.zeros(0, np.float32)
        return cls(method=method, features=features, classes=list(schema.classes),
                   x=np.zeros((0, len(features)), np.float32), node=np.zeros((0, len(features)), np.float32),
                   tracks_per_jet=zeros, output=nothing, prediction=np.zeros((0, len(schema.classes)), np.float32),
                   target=zeros, label=zeros, file_index=zeros, entry=zeros, spectators={}, edges_per_jet=zeros,
                   absorbed=nothing if absorbed else None, edge_src=zeros if edges else None,
                   edge_dst=zeros if edges else None, edge_relevance=nothing if edges else None,
                   edge_score=nothing if edges else None,
                   edge_parts={name: nothing for name in edge_names} if edges and edge_names else None)

    def select(self, jets: Sequence[int]) -> "RelevanceTable":
        """The table of the given jets only, in the given order."""
        jets = np.asarray(jets, dtype=np.int64)

        def rows(per_jet: np.ndarray) -> np.ndarray:
            starts = np.cumsum(per_jet) - per_jet
            chosen = [np.arange(starts[jet], starts[jet] + per_jet[jet]) for jet in jets]
            return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)

        track_rows, edge_rows = rows(self.tracks_per_jet), rows(self.edges_per_jet)
        values: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("method", "features", "classes") or value is None:
                values[item.name] = value
            elif item.name == "spectators":
                values[item.name] = {key: column[jets] for key, column in value.items()}
            elif item.name == "edge_parts":
                values[item.name] = {key: column[edge_rows] for key, column in value.items()}
            elif item.name in ("x", "node"):
                values[item.name] = value[track_rows]
            elif item.name.startswith("edge_"):
                values[item.name] = value[edge_rows]
            else:
                values[item.name] = value[jets]
        return type(self)(**values)

    @classmethod
    def concatenate(cls, tables: Sequence["RelevanceTable"]) -> "RelevanceTable":
        """One table of the jets of ``tables``, in order."""
        if not tables:
            raise ValueError("no tables to concatenate")
        first = tables[0]
        joined = {}
        for item in fields(cls):
            values = [getattr(table, item.name) for table in tables]
            if item.name in ("method", "features", "classes"):
                joined[item.name] = values[0]
            elif item.name == "spectators":
                joined[item.name] = {key: np.concatenate([v[key] for v in values]) for key in first.spectators}
            elif item.name == "edge_parts":
                joined[item.name] = None if values[0] is None else {
                    key: np.concatenate([v[key] for v in values]) for key in values[0]}
            elif values[0] is None:
                joined[item.name] = None
            else:
                joined[item.name] = np.concatenate(values)
        return cls(**joined)
