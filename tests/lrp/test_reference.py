"""LRP by hooks against the explicit float64 relevance-matrix reference."""
import numpy as np
import pytest
import torch

import hin_captum
from tests.factories import jet_batch, random_hin
from tests.lrp.reference import hin_relevance


@pytest.mark.parametrize("reference", ["auto", "zero"])
@pytest.mark.parametrize("epsilon", [1e-9, 0.3])
@pytest.mark.parametrize("target", [0, 1])
def test_hin_node_and_edge_relevance_match_the_reference(epsilon, target, reference):
    model = random_hin(seed=3, n_features=7, hidden=16).double()
    data = jet_batch([5, 1, 3, 4], n_features=7, seed=1, dtype=torch.float64)
    x0 = model.bn.running_mean if reference == "auto" else torch.zeros(7, dtype=torch.float64)
    assert x0.abs().min() > 0.01 or reference == "zero"  # the two references really differ

    explanation = hin_captum.attribute(model, data, target=target, epsilon=epsilon, reference=reference)
    node, edge, logits = hin_relevance(model, data.x, data.edge_index, data.batch, target, epsilon=epsilon,
                                       reference=x0)

    np.testing.assert_allclose(explanation.node.numpy(), node, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(explanation.edge.numpy(), edge, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(explanation.output.numpy(), logits[:, target], rtol=1e-10)
    assert np.abs(node).sum() > 1e-3  # the comparison is not between zeros


def test_hin_of_checkpoint_size_matches_the_reference_in_float32():
    model = random_hin(seed=5)
    data = jet_batch([6, 4], seed=2)

    explanation = hin_captum.attribute(model, data, target=1, epsilon=0.01)
    node, edge, _ = hin_relevance(model, data.x, data.edge_index, data.batch, 1, epsilon=0.01,
                                  reference=model.bn.running_mean)

    scale = np.abs(node).max()
    np.testing.assert_allclose(explanation.node.numpy(), node, atol=2e-4 * scale)
    np.testing.assert_allclose(explanation.edge.numpy(), edge, atol=2e-4 * np.abs(edge).max())
