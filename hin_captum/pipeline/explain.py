"""The explain loop: the usable jets of one chunk, batch by batch, into one relevance table.

Batches hold at most ``batch_size`` jets and, with ``max_edges``, at most that many
pairs the model builds (:meth:`~hin_captum.models.tagger.Tagger.jet_cost`: ``n (n - 1)``
edges per jet of ``n`` tracks for a fully connected graph model, ``n k`` for
ParticleNet, ``n^2`` for ParT): memory grows with them, so big jets make smaller
batches; a jet above the budget is explained alone. Batches carry the fully connected
graphs only for models that read them.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.graphs import jet_batch
from ..data.root import JetChunk
from ..data.schema import PREDICTED, JetSchema
from ..methods import AttributionMethod
from ..output.table import RelevanceTable
from ..util import InputError


def explain_chunk(
    explainer: AttributionMethod,
    chunk: JetChunk,
    batch_size: int,
    target: int | str,
    device: torch.device,
    schema: JetSchema,
    max_edges: int | None = None,
) -> RelevanceTable | None:
    """Explain the usable jets of ``chunk`` in batches of at most ``batch_size`` jets and ``max_edges`` edges on
    ``device`` for ``target`` (a class index or ``predicted``). Batches are built on the device from the chunk's
    arrays (:func:`jet_batch`). None for a chunk without usable jets."""
    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, got {batch_size}")
    if chunk.num_jets == 0:
        return None
    tables = []
    first_track = np.concatenate([[0], np.cumsum(chunk.tracks_per_jet)])
    if not np.array_equal(chunk.track_index, np.arange(len(chunk.x)) - np.repeat(first_track[:-1],
                                                                                  chunk.tracks_per_jet)):
        raise InputError("jets must keep all their tracks in input order (read them without max_tracks)")
    tagger = explainer.tagger
    for jets in batches(tagger.jet_cost(chunk.tracks_per_jet), batch_size, max_edges):
        batch = jet_batch(chunk.x[first_track[jets.start] : first_track[jets.stop]], chunk.tracks_per_jet[jets], device,
                          connected=tagger.uses_edges)
        targets = explainer.logits(batch).argmax(1) if target == PREDICTED else int(target)
        tables.append(RelevanceTable.from_explanation(batch, explainer.explain(batch, targets), chunk, jets, schema))
    return RelevanceTable.concatenate(tables)


def batches(cost: np.ndarray, batch_size: int, max_edges: int | None = None) -> list[slice]:
    """Consecutive jets in batches of at most ``batch_size`` jets whose ``cost`` (pairs built, per jet) adds up to
    at most ``max_edges`` (a costlier jet alone)."""
    edges = np.asarray(cost, dtype=np.int64)
    out, start = [], 0
    while start < len(edges):
        stop = min(start + batch_size, len(edges))
        if max_edges is not None:
            within = np.searchsorted(np.cumsum(edges[start:stop]), max_edges, side="right")
            stop = start + max(1, int(within))
        out.append(slice(start, stop))
        start = stop
    return out
