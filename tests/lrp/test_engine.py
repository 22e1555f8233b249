"""The hook engine: conservation, batching, hygiene, and robustness."""
import copy

import pytest
import torch
from torch import nn

import hin_captum
from hin_captum.lrp import LRP, UnsupportedModuleError
from tests.factories import jet_batch, random_hin
from tests.pyg.models import OneLayerGCN, gcn_message_shares, graph_classifier, random_graphs


def hooks_of(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_bias_free_hin_conserves_relevance_in_float32(seed):
    model = random_hin(seed=seed, bias=False)
    data = jet_batch([12, 7, 20, 2], seed=seed)

    explanation = hin_captum.attribute(model, data, target=1, epsilon=1e-9)

    totals = explanation.node_relevance_per_graph()
    assert explanation.output.abs().min() > 5e-3  # a meaningful denominator
    torch.testing.assert_close(totals, explanation.output, rtol=1e-5, atol=0)


def test_conservation_report_closes_and_names_every_layer():
    model = random_hin(seed=4)
    data = jet_batch([9, 5], seed=4)

    report = hin_captum.attribute(model, data, target=0, conservation=True).conservation

    assert [layer.name for layer in report.layers][0] == "bn"
    assert len(report.layers) == 9  # input BN and eight canonized Linear(+BN) blocks
    assert abs(report.absorbed) > 1e-3  # biases do absorb relevance here
    assert abs(report.residual) < 1e-4 * (abs(report.absorbed) + float(report.output.abs().sum()))
    assert "absorbed" in str(report)


def test_a_batch_gives_the_same_relevance_as_each_jet_alone():
    model = random_hin(seed=6)
    data = jet_batch([8, 3, 11], seed=6)
    targets = torch.tensor([1, 0, 1])

    together = hin_captum.attribute(model, data, target=targets)

    for index, jet in enumerate(data.to_data_list()):
        alone = hin_captum.attribute(model, jet, target=int(targets[index]))
        nodes = data.batch == index
        torch.testing.assert_close(together.node[nodes], alone.node, rtol=1e-4, atol=1e-6)
        edges = nodes[data.edge_index[0]]
        torch.testing.assert_close(together.edge[edges], alone.edge, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(together.edge_score[edges], alone.edge_score, rtol=1e-4, atol=1e-7)


def test_edge_scores_sum_to_one_per_graph_and_edges_have_both_halves():
    model = random_hin(seed=7)
    data = jet_batch([6, 4, 5], seed=7)

    explanation = hin_captum.attribute(model, data)

    assert explanation.edge.shape == (data.num_edges, 2 * 48)
    per_graph = torch.zeros(3).index_add_(0, data.batch[data.edge_index[0]], explanation.edge_score)
    torch.testing.assert_close(per_graph, torch.ones(3))


def test_model_is_left_exactly_as_it_was():
    model = random_hin(seed=8).train()
    model.bn.eval()
    modes = {name: m.training for name, m in model.named_modules()}
    before = copy.deepcopy(model.state_dict())
    attributes_before = {name: set(vars(m)) for name, m in model.named_modules()}
    data = jet_batch([5, 6], seed=8)

    hin_captum.attribute(model, data, composite="gamma", conservation=True)

    assert {name: m.training for name, m in model.named_modules()} == modes
    assert hooks_of(model) == 0
    assert {name: set(vars(m)) for name, m in model.named_modules()} == attributes_before
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_hooks_are_removed_when_the_forward_raises():
    model = random_hin(seed=9)
    with pytest.raises(RuntimeError):
        LRP(model).attribute(torch.randn(4, 3), target=0, additional_forward_args=(torch.zeros(2, 0, dtype=torch.long), None))
    assert hooks_of(model) == 0


def test_repeated_calls_give_identical_results():
    model = random_hin(seed=10)
    data = jet_batch([7, 4], seed=10)
    first = hin_captum.attribute(model, data)
    second = hin_captum.attribute(model, data)
    assert torch.equal(first.node, second.node) and torch.equal(first.edge, second.edge)


@pytest.mark.parametrize("composite", ["epsilon", "gamma", "zplus"])
def test_no_nan_for_zero_padded_and_one_track_jets(composite):
    model = random_hin(seed=11)
    data = jet_batch([1, 4, 3], seed=11)
    data.x[data.batch == 1] = 0.0  # an all-zero jet
    data.x[-2:] = 0.0  # padded tracks
    for epsilon in (0.0, 1e-9, 1.0):
        explanation = hin_captum.attribute(model, data, composite=composite, epsilon=epsilon)
        for tensor in (explanation.node, explanation.edge, explanation.edge_score, explanation.prediction):
            assert torch.isfinite(tensor).all()


def test_epsilon_zero_without_biases_is_input_times_gradient():
    model = random_hin(seed=12, bias=False)
    data = jet_batch([5, 3], seed=12)
    x = data.x.clone().requires_grad_()
    logits = model(x, data.edge_index, data.batch)
    (gradient,) = torch.autograd.grad(logits[:, 1].sum(), x)

    explanation = hin_captum.attribute(model, data, target=1, epsilon=0.0)

    torch.testing.assert_close(explanation.node, x.detach() * gradient)


def test_inplace_relu_gives_the_same_relevance():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).eval()
    inplace = copy.deepcopy(plain)
    inplace[2] = nn.ReLU(inplace=True)
    x = torch.randn(5, 4)
    torch.testing.assert_close(LRP(plain, epsilon=0.1).attribute(x, target=1),
                               LRP(inplace, epsilon=0.1).attribute(x, target=1))


@pytest.mark.parametrize("layer, name", [(nn.LogSoftmax(-1), "LogSoftmax"), (nn.Conv1d(1, 1, 3), "Conv1d, kernel"),
                                         (nn.LSTM(4, 4), "LSTM")])
def test_modules_without_a_rule_are_refused_by_name(layer, name):
    model = nn.Sequential(nn.Linear(4, 4), layer, nn.Linear(4, 2))
    with pytest.raises(UnsupportedModuleError, match=rf"^1 \({name}"):
        LRP(model).attribute(torch.randn(3, 4), target=0)


def test_the_report_accounts_for_the_bias_a_gcn_adds_after_aggregating():
    model, data = graph_classifier("gcn"), random_graphs()

    report = hin_captum.attribute(model, data, target=2, conservation=True).conservation

    assert {"convs.0.lin", "convs.1.lin"} <= {layer.name for layer in report.layers}  # PyG's Linear gets a rule
    biases = [layer for layer in report.layers if layer.rule == "bias"]
    assert [layer.name for layer in biases] == ["convs.0.bias", "convs.1.bias"]
    assert all(abs(layer.absorbed) > 1e-4 for layer in biases)
    assert abs(report.residual) < 1e-5 * (abs(report.absorbed) + float(report.output.abs().sum()))


def test_gcn_edges_through_attribute_are_the_message_shares_and_self_loops_stay_with_the_nodes():
    """A bias-free one-layer GCN in float64: relevance per input edge is its message's share, computed by hand."""
    model, data = OneLayerGCN(hidden=6).eval(), random_graphs(dtype=torch.float64)
    explanation = hin_captum.attribute(model, data, target=2, epsilon=0.0, reference="zero")

    share, _ = gcn_message_shares(model, data, torch.full((data.num_graphs,), 2))
    assert explanation.edge.shape == (data.num_edges, 12)  # per input edge and feature: source half, destination half
    source, destination = explanation.edge[:, :6].sum(1), explanation.edge[:, 6:]
    torch.testing.assert_close(source, share[: data.num_edges], rtol=1e-9, atol=1e-12)
    assert destination.abs().max() == 0  # GCN gathers only by source
    loops = share[data.num_edges :].sum()  # the self-loops' part stays with the nodes
    torch.testing.assert_close(source.sum() + loops, explanation.output.sum())
    torch.testing.assert_close(explanation.node.sum(), explanation.output.sum())


def test_the_guard_runs_once_per_model_and_rules_and_again_when_the_model_changes(monkeypatch):
    from hin_captum.lrp import operations as guard_module

    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    entered = []
    original = guard_module.OperationRules.__enter__
    monkeypatch.setattr(guard_module.OperationRules, "__enter__", lambda self: entered.append(1) or original(self))
    x = torch.randn(3, 4)

    lrp = LRP(model)
    lrp.attribute(x, target=0)
    lrp.attribute(x, target=1)
    assert len(entered) == 1  # the second call found the model checked
    LRP(model).attribute(x, target=1)
    assert len(entered) == 1  # another front with the same rules (hin_captum.attribute makes one per call) too
    LRP(model, epsilon=0.25).attribute(x, target=1)
    assert len(entered) == 2  # other rules: another engine, checked on its own first pass

    class Gate(nn.Module):  # no parameters, no module LRP refuses by type: only the operations tell
        def forward(self, h):
            return h * torch.exp(h)

    model[1] = Gate()  # the same object, another model now
    with pytest.raises(UnsupportedModuleError, match="'exp' has no LRP rule"):
        lrp.attribute(x, target=0)
    assert len(entered) == 3
