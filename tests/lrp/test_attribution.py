"""hin_captum.LRP as a Captum attribution: targets, metrics, and the real HIN-LRP checkpoint."""
import pytest
import torch
from captum.attr import GradientAttribution
from captum.metrics import infidelity, sensitivity_max

import hin_captum
from hin_captum.models.dense import DenseGraphModel, to_dense
from tests.conftest import REFERENCE_LOGITS_HBB
from tests.factories import jet_batch, random_hin


def test_lrp_is_a_captum_gradient_attribution_with_per_graph_targets():
    model = random_hin(seed=1, n_features=6, hidden=16)
    data = jet_batch([4, 5, 3], n_features=6, seed=1)
    lrp = hin_captum.LRP(model)
    assert isinstance(lrp, GradientAttribution)

    targets = torch.tensor([0, 1, 1])
    mixed = lrp.attribute(data.x, target=targets, additional_forward_args=(data.edge_index, data.batch))
    for target in (0, 1):
        single = lrp.attribute(data.x, target=target, additional_forward_args=(data.edge_index, data.batch))
        nodes = targets[data.batch] == target
        torch.testing.assert_close(mixed[nodes], single[nodes])


def test_captum_infidelity_and_sensitivity_run_on_graphs_through_the_dense_view():
    model = random_hin(seed=2, n_features=6, hidden=16)
    data = jet_batch([4, 1, 6], n_features=6, seed=2)
    dense_model = DenseGraphModel(model)
    x, edges, num_nodes = to_dense(data)
    torch.testing.assert_close(dense_model(x, edges, num_nodes), model(data.x, data.edge_index, data.batch))

    # The dense model's BatchNorm reads a reshaped copy of x, so "auto" cannot see it: name the reference.
    lrp = hin_captum.LRP(dense_model, reference=model.bn.running_mean)
    relevance = lrp.attribute(x, target=1, additional_forward_args=(edges, num_nodes))
    sparse = hin_captum.LRP(model).attribute(data.x, target=1, additional_forward_args=(data.edge_index, data.batch))
    mask = torch.arange(x.shape[1]) < num_nodes[:, None]
    torch.testing.assert_close(relevance[mask], sparse)
    assert relevance[~mask].abs().sum() == 0

    def perturb(inputs):
        noise = 0.1 * torch.randn(inputs.shape, generator=torch.Generator().manual_seed(0))
        return noise, inputs - noise

    scores = infidelity(dense_model, perturb, x, relevance, additional_forward_args=(edges, num_nodes),
                        target=1, n_perturb_samples=4)
    sensitivity = sensitivity_max(lrp.attribute, x, target=1, additional_forward_args=(edges, num_nodes),
                                  n_perturb_samples=3)
    assert scores.shape == sensitivity.shape == (3,)
    assert torch.isfinite(scores).all() and torch.isfinite(sensitivity).all() and (sensitivity > 0).all()


def test_real_jets_with_the_hin_lrp_checkpoint(reference_dir, real_jets):
    model = hin_captum.load_model(reference_dir / "hin_lrp_IN.pth")
    for jet, logit in zip(real_jets, REFERENCE_LOGITS_HBB):
        explanation = hin_captum.attribute(model, jet, target=1, conservation=True)
        assert explanation.output.item() == pytest.approx(logit, abs=1e-4)
        for tensor in (explanation.node, explanation.edge, explanation.edge_score):
            assert torch.isfinite(tensor).all()
        report = explanation.conservation
        assert abs(report.residual) < 1e-4 * (abs(report.absorbed) + abs(logit))
        assert explanation.prediction[0, 0] > 0.95  # both real jets are QCD, as the checkpoint says
