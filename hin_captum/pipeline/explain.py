"""The explain loop: the usable jets of one chunk, batch by batch, into one relevance table."""
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
) -> RelevanceTable | None:
    """Explain the usable jets of ``chunk`` in batches of ``batch_size`` on ``device`` for ``target`` (a class
    index or ``predicted``). Batches are built on the device from the chunk's arrays (:func:`jet_batch`).
    None for a chunk without usable jets."""
    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, got {batch_size}")
    if chunk.num_jets == 0:
        return None
    tables = []
    first_track = np.concatenate([[0], np.cumsum(chunk.tracks_per_jet)])
    if not np.array_equal(chunk.track_index, np.arange(len(chunk.x)) - np.repeat(first_track[:-1],
                                                                                  chunk.tracks_per_jet)):
        raise InputError("jets must keep all their tracks in input order (read them without max_tracks)")
    for start in range(0, chunk.num_jets, batch_size):
        jets = slice(start, min(start + batch_size, chunk.num_jets))
        batch = jet_batch(chunk.x[first_track[jets.start] : first_track[jets.stop]], chunk.tracks_per_jet[jets], device)
        targets = explainer.logits(batch).argmax(1) if target == PREDICTED else int(target)
        tables.append(RelevanceTable.from_explanation(batch, explainer.explain(batch, targets), chunk, jets, schema))
    return RelevanceTable.concatenate(tables)
