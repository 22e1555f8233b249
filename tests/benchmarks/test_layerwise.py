"""The HIN-LRP algorithm of the benchmark (module by module, autograd per layer) against the engine."""
import torch

import hin_captum
from hin_captum.benchmarks.layerwise import layerwise_relevance
from tests.factories import jet_batch, random_hin


def test_on_a_bias_free_network_it_gives_the_engines_relevance_measured_from_zero():
    """Without biases, LRP-0 module by module equals LRP-0 on the merged blocks: the two must agree."""
    model = random_hin(seed=4, n_features=7, hidden=16, bias=False).double()
    jet = jet_batch([6], n_features=7, seed=4, dtype=torch.float64)

    layerwise = layerwise_relevance(model, jet.x, jet.edge_index, target=1, epsilon=1e-12)

    engine = hin_captum.attribute(model, jet, target=1, epsilon=1e-12, reference="zero").node
    torch.testing.assert_close(layerwise, engine, rtol=1e-6, atol=1e-10)
    assert layerwise.abs().sum() > 1e-3

