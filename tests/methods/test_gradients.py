"""Captum's saliency, input x gradient and integrated gradients against gradients taken graph by graph."""
import numpy as np
import pytest
import torch

import hin_captum
from tests.factories import jet_batch, random_hin


def gradient_per_graph(model, data, target, x_of_graph=None):
    """d logit_target / d x, one graph at a time, with plain autograd."""
    grads = []
    for graph in data.to_data_list():
        x = (graph.x if x_of_graph is None else x_of_graph(graph)).clone().requires_grad_()
        logit = model(x, graph.edge_index, torch.zeros(graph.num_nodes, dtype=torch.long))[0, target]
        grads.append(torch.autograd.grad(logit, x)[0])
    return torch.cat(grads)


def test_saliency_and_input_x_gradient_match_per_graph_gradients():
    model = random_hin(seed=1, n_features=6, hidden=16)
    data = jet_batch([4, 6, 2], n_features=6, seed=1)
    grad = gradient_per_graph(model, data, target=1)

    torch.testing.assert_close(hin_captum.attribute(model, data, method="saliency").node, grad.abs())
    torch.testing.assert_close(hin_captum.attribute(model, data, method="inputxgradient", reference="zero").node,
                               data.x * grad)
    from_mean = hin_captum.attribute(model, data, method="inputxgradient").node  # the input BatchNorm's mean
    torch.testing.assert_close(from_mean, (data.x - model.bn.running_mean) * grad)
    assert model.bn.running_mean.abs().min() > 0.01


@pytest.mark.parametrize("steps_per_pass", [1, 3, 7])
def test_integrated_gradients_equal_a_riemann_sum_taken_graph_by_graph(steps_per_pass):
    model = random_hin(seed=2, n_features=6, hidden=16)
    data = jet_batch([4, 5, 3], n_features=6, seed=2)
    n_steps, baseline = 7, 0.5
    alphas = (np.arange(n_steps) + 0.5) / n_steps

    expected = sum(
        gradient_per_graph(model, data, 0, lambda g, a=a: baseline + a * (g.x - baseline)) for a in alphas
    ) * (data.x - baseline) / n_steps
    explanation = hin_captum.attribute(model, data, method="ig", target=0, n_steps=n_steps, reference=baseline,
                                       integration="riemann_middle", steps_per_pass=steps_per_pass)

    torch.testing.assert_close(explanation.node, expected, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_are_complete_from_the_input_batchnorm_mean():
    model = random_hin(seed=3, n_features=6, hidden=16)
    data = jet_batch([4, 5, 3], n_features=6, seed=3)
    explanation = hin_captum.attribute(model, data, method="ig", n_steps=200)
    with torch.no_grad():
        average_tracks = model.bn.running_mean.expand_as(data.x)
        at_baseline = model(average_tracks, data.edge_index, data.batch)[:, 1]
    torch.testing.assert_close(explanation.node_relevance_per_graph(), explanation.output - at_baseline,
                               rtol=1e-3, atol=1e-4)
