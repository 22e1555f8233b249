"""Separability of two sets of jets: per-jet statistics and the held-out AUC, against explicit computations."""
import numpy as np
import torch

from hin_captum.metrics.manifold import jet_statistics, separability_auc
from hin_captum.training.metrics import roc_auc


def test_jet_statistics_are_the_mean_and_population_spread_of_each_jet():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=generator, dtype=torch.float64)
    batch = torch.tensor([0] * 7 + [1] * 13 + [2] * 10)
    statistics = jet_statistics(x, batch).numpy()
    for jet in range(3):
        rows = x[batch == jet].numpy()
        np.testing.assert_allclose(statistics[jet], np.concatenate([rows.mean(0), rows.std(0)]), rtol=1e-9)


def test_the_roc_auc_the_classifier_is_scored_with_is_the_mann_whitney_statistic():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=200).round(1)  # ties
    labels = rng.random(200) < 0.4
    ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable").astype(float) + 1
    for value in np.unique(scores):  # average ranks of ties
        ranks[scores == value] = ranks[scores == value].mean()
    n1, n0 = labels.sum(), (~labels).sum()
    expected = (ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert abs(roc_auc(labels, scores) - expected) < 1e-12


def test_a_linear_classifier_tells_shifted_sets_apart_and_not_equal_ones():
    generator = torch.Generator().manual_seed(2)
    same = [torch.randn(200, 10, generator=generator) for _ in range(2)]
    shifted = torch.randn(200, 10, generator=generator) + torch.tensor([1.5] + [0.0] * 9)
    assert abs(separability_auc(same[0], same[1]) - 0.5) < 0.1
    assert separability_auc(shifted, same[1]) > 0.8
    assert separability_auc(shifted, same[1], seed=0) == separability_auc(shifted, same[1], seed=0)
