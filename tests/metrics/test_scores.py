"""Ground truth, conservation, agreement and memory scores on inputs with known answers."""
import numpy as np
import pytest
import torch

import hin_captum
from hin_captum.methods.explanation import explanation_of
from hin_captum.metrics import (
    conservation_error, feature_importance, feature_share, peak_tensor_memory, spearman, spearman_per_graph,
    top_feature_rate,
)
from tests.factories import jet_batch, random_hin


def handmade(node: torch.Tensor, batch: torch.Tensor, logits: torch.Tensor):
    data = jet_batch([int(n) for n in torch.bincount(batch)], n_features=node.shape[1])
    return explanation_of("test", data, torch.ones(len(logits), dtype=torch.long), logits, node)


def test_feature_share_rank_and_conservation_on_known_relevance():
    node = torch.tensor([[1.0, -3.0, 0.0], [0.0, 1.0, 1.0], [2.0, 0.0, -1.0]])
    explanation = handmade(node, torch.tensor([0, 0, 1]), torch.tensor([[0.0, -1.0], [0.0, 2.0]]))

    assert feature_share(node, 1) == pytest.approx(4 / 9)
    assert np.array_equal(feature_importance(explanation), [[1, 4, 1], [2, 0, 1]])
    assert top_feature_rate(feature_importance(explanation), 1) == 0.5
    np.testing.assert_allclose(conservation_error(explanation), [abs(0 - -1) / 1, abs(1 - 2) / 2])


def test_spearman_with_ties_matches_pearson_of_average_ranks():
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])) == pytest.approx(1)
    assert spearman(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])) == pytest.approx(-1)
    a, b = np.array([1.0, 1, 2, 3]), np.array([1.0, 2, 3, 3])
    ranks_a, ranks_b = np.array([1.5, 1.5, 3, 4]), np.array([1, 2, 3.5, 3.5])
    assert spearman(a, b) == pytest.approx(np.corrcoef(ranks_a, ranks_b)[0, 1])
    assert spearman(np.ones(4), b) == 0.0


def test_a_method_agrees_with_itself_and_not_with_noise():
    model = random_hin(seed=1, n_features=8, hidden=16)
    data = jet_batch([5, 6, 4], n_features=8, seed=1)
    lrp = hin_captum.attribute(model, data)
    np.testing.assert_allclose(spearman_per_graph(lrp, hin_captum.attribute(model, data)), 1.0)
    noise = hin_captum.attribute(model, data, method="random")
    assert np.abs(spearman_per_graph(lrp, noise)).mean() < 0.9


def test_peak_tensor_memory_counts_tensors_alive_together():
    megabyte = 2**20

    def two_at_once():
        first = torch.ones(megabyte // 4)
        second = torch.ones(megabyte // 4)
        del first, second
        third = torch.ones(megabyte // 4)
        return third

    assert peak_tensor_memory(two_at_once) == pytest.approx(2 * megabyte, rel=0.01)
