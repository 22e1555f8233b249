"""Relevance measured from a reference point: input invariance, zero at the reference, conservation, stability."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

import hin_captum
from hin_captum.config import bundled
from hin_captum.data import read_root
from hin_captum.lrp import COMPOSITES, track_mean
from hin_captum.models.tagger import jet_reference
from hin_captum.metrics import stability
from tests.conftest import REFERENCE_LOGITS_HBB
from tests.factories import jet_batch, random_hin

ROOT = Path(__file__).resolve().parents[2]
GRADIENT_COMPOSITES = ["epsilon", "gamma", "zplus", "alpha2beta1"]
"""Composites whose input block sees x - x0 and passes relevance on as a gradient."""
SHIFTED = [0, 3, 7, 20, 41]


@pytest.fixture(scope="module")
def toy():
    """The pretrained toy model and the 256 bundled toy jets."""
    model = hin_captum.load_model(bundled("pretrained/hin_toy.pt"))
    jets = Batch.from_data_list(read_root(bundled("pretrained/toy_jets.root")).jets)
    return model, jets


@pytest.fixture(scope="module")
def toy64(toy):
    """24 of the toy jets in float64, so that moving a feature by a constant loses no digits (in float32 the shift
    of a feature with sd 0.01 alone changes the model's output by 1e-4)."""
    model, jets = toy
    graphs = jets.to_data_list()[:24]
    for graph in graphs:
        graph.x = graph.x.double()
    return copy.deepcopy(model).double(), Batch.from_data_list(graphs)


def shifted(model, data, shift):
    """The same model and jets with some raw features moved by ``shift`` and the input BatchNorm moved along:
    every output stays the same, only where zero sits in those features changes."""
    moved = copy.deepcopy(model)
    offset = torch.zeros(data.x.shape[1], dtype=data.x.dtype)
    offset[SHIFTED] = shift
    moved.bn.running_mean += offset
    return moved, Batch(x=data.x + offset, edge_index=data.edge_index, batch=data.batch, ptr=data.ptr), offset


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_shifting_features_and_reference_together_changes_no_relevance(toy64, composite):
    model, jets = toy64
    moved, moved_jets, offset = shifted(model, jets, 4.0)
    torch.testing.assert_close(moved(moved_jets.x, jets.edge_index, jets.batch),
                               model(jets.x, jets.edge_index, jets.batch), atol=1e-9, rtol=0)

    before = hin_captum.attribute(model, jets, composite=composite).node
    after = hin_captum.attribute(moved, moved_jets, composite=composite).node  # "auto": the moved BatchNorm mean

    assert (after - before).abs().max() <= 1e-5 * before.abs().max()


def test_a_tensor_reference_moved_with_the_features_changes_no_relevance(toy64):
    model, jets = toy64
    moved, moved_jets, offset = shifted(model, jets, 4.0)
    reference = track_mean(jets.to_data_list())
    assert reference.dtype == torch.float64

    before = hin_captum.attribute(model, jets, reference=reference).node
    after = hin_captum.attribute(moved, moved_jets, reference=reference + offset).node

    assert (after - before).abs().max() <= 1e-5 * before.abs().max()


def test_measured_from_zero_the_same_shift_moves_relevance(toy):
    """What the reference point fixes: with x * gradient, the shift alone changes the explanation."""
    model, jets = toy
    moved, moved_jets, _ = shifted(model, jets, 4.0)

    before = hin_captum.attribute(model, jets, reference="zero").node
    after = hin_captum.attribute(moved, moved_jets, reference="zero").node

    assert (after - before).abs().max() > 0.5 * before.abs().max()


@pytest.mark.parametrize("composite", GRADIENT_COMPOSITES)
def test_a_feature_at_its_reference_value_gets_exactly_zero_relevance_also_at_zero(composite):
    model = random_hin(seed=2, n_features=6, hidden=16)
    data = jet_batch([5, 4], n_features=6, seed=2)
    reference = torch.tensor([0.0, 0.5, -1.0, 0.0, 2.0, 0.3])
    data.x[:, 0] = 0.0  # x = 0 = reference
    data.x[::2, 2] = -1.0  # x = reference, away from zero
    data.x[1::3, 3] = 0.0  # x = 0 = reference, in some tracks only

    explanation = hin_captum.attribute(model, data, composite=composite, reference=reference)

    at_reference = data.x == reference
    assert at_reference.sum() >= 9 + 5 + 3
    assert torch.all(explanation.node[at_reference] == 0.0)
    assert explanation.node[~at_reference].abs().min() > 0  # everything else does get relevance


def test_auto_reference_is_the_running_mean_of_the_batchnorm_that_reads_the_input(toy):
    model, jets = toy
    torch.testing.assert_close(jet_reference("auto", model, jets), model.bn.running_mean)
    torch.testing.assert_close(jet_reference("zero", model, jets), torch.zeros(48))
    explanation = hin_captum.attribute(model, Batch.from_data_list(jets.to_data_list()[:3]))
    torch.testing.assert_close(explanation.reference, model.bn.running_mean)


def test_a_model_without_an_input_batchnorm_is_measured_from_zero():
    from tests.pyg.models import graph_classifier, random_graphs

    model, data = graph_classifier("gcn"), random_graphs()
    assert torch.equal(jet_reference("auto", model, data), torch.zeros(data.x.shape[1]))


def test_the_default_sum_follows_the_logit_on_toy_jets(toy):
    """Correlation >= 0.9; what biases keep is reported per jet and closes the layer-by-layer report."""
    model, jets = toy
    explanation = hin_captum.attribute(model, jets, conservation=True)

    totals = explanation.node_relevance_per_graph().double()
    assert np.corrcoef(totals.numpy(), explanation.output.double().numpy())[0, 1] >= 0.9
    torch.testing.assert_close(explanation.absorbed.double(), explanation.output.double() - totals, atol=1e-5,
                               rtol=0)
    assert explanation.absorbed.sum().item() == pytest.approx(explanation.conservation.absorbed, abs=1e-3)


def test_zplus_trades_faithfulness_for_a_sum_within_a_quarter_of_the_logit(toy):
    """The conserving option: bias-free z+ in hidden layers passes (nearly) every logit down."""
    model, jets = toy
    explanation = hin_captum.attribute(model, jets, composite="zplus", epsilon=1e-9)

    totals, outputs = explanation.node_relevance_per_graph().double(), explanation.output.double()
    assert np.corrcoef(totals.numpy(), outputs.numpy())[0, 1] >= 0.99
    assert float(((totals - outputs).abs() / outputs.abs()).median()) <= 0.25


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_every_composite_is_stable_on_every_toy_jet(toy, composite):
    model, jets = toy
    explanation = hin_captum.attribute(model, jets, composite=composite)
    assert stability(explanation) <= 20  # |sum R| <= 20 (|logit| + 1) on every jet, and no NaN
    zero = hin_captum.attribute(model, Batch.from_data_list(jets.to_data_list()[:64]), composite=composite,
                                reference="zero")
    assert stability(zero) <= 20


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_every_composite_is_stable_on_the_real_jets_with_the_real_checkpoint(reference_dir, real_jets, composite):
    model = hin_captum.load_model(reference_dir / "hin_lrp_IN.pth")
    for jet, logit in zip(real_jets, REFERENCE_LOGITS_HBB):
        explanation = hin_captum.attribute(model, jet, composite=composite, target=1)
        assert explanation.output.item() == pytest.approx(logit, abs=1e-4)
        assert stability(explanation) <= 20
