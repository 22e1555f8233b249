"""Is a set of jets on the manifold of real jets? A held-out linear classifier's AUC on per-jet statistics.

0.5: the classifier cannot tell the two sets apart; 1.0: it always can. This is the test of
issue 22 for prototypes: means and spreads of each track feature over a jet's tracks, a
logistic regression trained on one half of each set and scored on the other.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Batch

from ..training.metrics import roc_auc


def jet_statistics(x: Tensor, batch: Tensor, num_jets: int | None = None) -> Tensor:
    """Per jet, the mean and the standard deviation (population) of every track feature: ``[jets, 2 F]``."""
    num_jets = int(batch.max()) + 1 if num_jets is None else num_jets
    tracks = torch.bincount(batch, minlength=num_jets).clamp_min(1).to(x)[:, None]
    mean = torch.zeros(num_jets, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, batch, x) / tracks
    square = torch.zeros_like(mean).index_add_(0, batch, (x - mean[batch]) ** 2) / tracks
    return torch.cat([mean, square.clamp_min(0).add(1e-12).sqrt()], 1)


def batch_statistics(jets: Batch) -> Tensor:
    """:func:`jet_statistics` of a batch of jets."""
    return jet_statistics(jets.x, jets.batch, jets.num_graphs)


def separability_auc(first: Tensor, second: Tensor, seed: int = 0, l2: float = 1.0) -> float:
    """The held-out AUC of a logistic regression telling the rows of ``first`` from those of ``second``.

    Each set is split in halves at random (``seed``); the classifier is fitted on one half of
    each, on features standardised by that half, with the penalty ``l2 * |w|^2 / 2`` (as
    scikit-learn's default ``C=1``), in float64 by L-BFGS, and scored on the other halves.
    """
    generator = torch.Generator().manual_seed(seed)
    halves = [_halves(len(rows), generator) for rows in (first, second)]
    train = torch.cat([first[halves[0][0]], second[halves[1][0]]]).double()
    test = torch.cat([first[halves[0][1]], second[halves[1][1]]]).double()
    train_labels = torch.cat([torch.ones(len(halves[0][0])), torch.zeros(len(halves[1][0]))]).double()
    test_labels = torch.cat([torch.ones(len(halves[0][1])), torch.zeros(len(halves[1][1]))]).double()
    centre, scale = train.mean(0), train.std(0).clamp_min(1e-12)
    train, test = (train - centre) / scale, (test - centre) / scale
    weights = torch.zeros(train.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimiser.zero_grad()
        logits = train @ weights[:-1] + weights[-1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, train_labels, reduction="sum")
        loss = loss + 0.5 * l2 * (weights[:-1] ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return roc_auc(test_labels.numpy(), (test @ weights[:-1] + weights[-1]).numpy())


def _halves(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    if n < 4:
        raise ValueError(f"a held-out AUC needs at least 4 rows per set, got {n}")
    order = torch.randperm(n, generator=generator)
    return order[: n // 2], order[n // 2:]
