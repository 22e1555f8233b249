"""GNNExplainer (PyG) and Captum's LRP as the comparison runs them."""
import numpy as np
import torch

import hin_captum
from tests.factories import jet_batch, random_hin
from tests.lrp.reference import hin_relevance


def test_gnnexplainer_masks_are_in_unit_range_repeatable_and_reach_the_edges():
    model = random_hin(seed=1, n_features=6, hidden=16)
    data = jet_batch([4, 5], n_features=6, seed=1)

    first = hin_captum.attribute(model, data, method="gnnexplainer", epochs=20, seed=3)
    again = hin_captum.attribute(model, data, method="gnnexplainer", epochs=20, seed=3)

    assert torch.equal(first.node, again.node) and torch.equal(first.edge, again.edge)
    for mask in (first.node, first.edge):
        assert mask.min() >= 0 and mask.max() <= 1
    assert first.edge.shape == (data.num_edges, 1)
    assert first.edge.max() > 0  # the HIN's messages carry PyG's edge mask, so edges get gradients


def test_gnnexplainer_masks_of_a_jet_do_not_depend_on_the_jets_before_it():
    model = random_hin(seed=1, n_features=6, hidden=16)
    pair = jet_batch([4, 5], n_features=6, seed=1)
    second = pair.get_example(1)

    in_pair = hin_captum.attribute(model, pair, method="gnnexplainer", epochs=10, seed=3, target=1)
    alone = hin_captum.attribute(model, second, method="gnnexplainer", epochs=10, seed=3, target=1)

    assert torch.allclose(in_pair.node[4:], alone.node, atol=1e-6)
    assert torch.allclose(in_pair.edge[12:], alone.edge, atol=1e-6)


def test_captum_lrp_departs_from_the_reference_lrp_that_hin_captum_matches():
    """Captum applies its rule to Linear and BatchNorm separately: no canonization, so not the paper's LRP."""
    model = random_hin(seed=2, n_features=6, hidden=16).double()
    data = jet_batch([5, 4], n_features=6, seed=2, dtype=torch.float64)
    from_zero, _, _ = hin_relevance(model, data.x, data.edge_index, data.batch, 1)  # Captum measures from zero

    ours = hin_captum.attribute(model, data, reference="zero", epsilon=1e-9).node.numpy()
    captum = hin_captum.attribute(model, data, method="captum-lrp").node.numpy()

    np.testing.assert_allclose(ours, from_zero, rtol=1e-6, atol=1e-10)
    assert np.abs(captum - from_zero).sum() > 0.1 * np.abs(from_zero).sum()
