"""The sanity-check jets of the HIN-LRP study, where the right explanation is known.

Recipe (HIN-LRP ``notebooks/sythesized_input.ipynb``): every one of the 48 features
of every track is N(0, 1) noise. On top of the noise, feature 0 gets a value drawn
uniformly from {0, 10} and feature 3 one from {-20, -10, 0, 10}, per track. The label
is 1 when the mean over the jet's tracks of the noise-free added values
``a0 + 2 * a3`` is positive, else 0 (a mean of exactly 0 is class 0). Feature 3
carries most of the decision, feature 0 the rest, and no other feature matters.
About a quarter of the jets are class 1.
"""
from __future__ import annotations

import torch

from ..util import InputError
from .graphs import JetGraph, jet_graph

N_FEATURES = 48
# Feature index -> values added to its noise, each drawn uniformly per track.
SIGNAL_VALUES = {0: (0.0, 10.0), 3: (-20.0, -10.0, 0.0, 10.0)}
# The label is sign(mean over tracks of sum(weight * added value)).
LABEL_WEIGHTS = {0: 1.0, 3: 2.0}


def make_sanity_jets(n_jets: int, seed: int, n_tracks: int = 10) -> list[JetGraph]:
    """``n_jets`` fully connected jets of ``n_tracks`` tracks, deterministic in ``seed``."""
    if n_jets < 1:
        raise InputError(f"n_jets must be at least 1, got {n_jets}")
    if n_tracks < 2:
        raise InputError(f"a jet graph needs at least 2 tracks, got n_tracks={n_tracks}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_jets, n_tracks, N_FEATURES, generator=generator)
    score = torch.zeros(n_jets, n_tracks)
    for feature, values in SIGNAL_VALUES.items():
        choice = torch.randint(len(values), (n_jets, n_tracks), generator=generator)
        added = torch.tensor(values)[choice]
        x[:, :, feature] += added
        score += LABEL_WEIGHTS[feature] * added
    labels = (score.mean(dim=1) > 0).long()
    return [jet_graph(features, int(label)) for features, label in zip(x, labels, strict=True)]
