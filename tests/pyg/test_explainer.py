"""LRP behind PyG's Explainer on PyG's own layers and models, checked against independent computations."""
import pytest
import torch
from captum.attr import LRP as CaptumLRP
from torch import nn
from torch_geometric import nn as pyg
from torch_geometric.explain import Explainer
from torch_geometric.explain.metric import fidelity
from torch_geometric.utils import k_hop_subgraph, scatter

import hin_captum
from hin_captum.util import InputError
from hin_captum.lrp import UnsupportedModuleError
from hin_captum.methods.captum_lrp import epsilon_rules_for_captum
from hin_captum.pyg import LRPExplainer
from tests.factories import jet_batch, random_hin
from tests.pyg.models import (
    BASIC_MODELS, CLASSES, CONVOLUTIONS, FEATURES, HIDDEN, POOLS, OneLayerGCN, basic_model, gcn_message_shares,
    graph_classifier, random_graphs,
)

NODE = 7  # its output depends on the input in every test model (node 3 of EdgeCNN with biases does not)
TINY = 1e-9
"""Epsilon of the checks: relevance is conserved exactly only as epsilon goes to 0 (the default, 0.1, absorbs some)."""


def explainer(model, task_level="graph", edges=True, algorithm=None, **options):
    return Explainer(model, algorithm=algorithm or LRPExplainer(epsilon=TINY), explanation_type="model",
                     node_mask_type="attributes", edge_mask_type="object" if edges else None,
                     model_config=dict(mode="multiclass_classification", task_level=task_level, return_type="raw"),
                     **options)


def explain_graphs(model, data, **options):
    return explainer(model, **options)(data.x, data.edge_index, batch=data.batch)


def explained_logits(model, data, explanation):
    with torch.no_grad():
        logits = model(data.x, data.edge_index, data.batch)
    return logits.gather(1, explanation.target.view(-1, 1)).squeeze(1)


def assert_conserved(relevance, output):
    torch.testing.assert_close(relevance, output, rtol=1e-4, atol=1e-4 * float(output.abs().max()))


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("kind", CONVOLUTIONS)
def test_bias_free_graph_models_conserve_relevance_in_every_graph(kind, pool):
    model, data = graph_classifier(kind, pool, bias=False), random_graphs()

    explanation = explain_graphs(model, data)

    per_graph = scatter(explanation.node_mask.sum(1), data.batch, dim=0, reduce="sum")
    assert_conserved(per_graph, explained_logits(model, data, explanation))


@pytest.mark.parametrize("name", BASIC_MODELS)
def test_bias_free_basic_models_conserve_one_nodes_output_within_its_receptive_field(name):
    model, data = basic_model(name, bias=False), random_graphs()

    explanation = explainer(model, task_level="node")(data.x, data.edge_index, index=NODE)

    with torch.no_grad():
        output = model(data.x, data.edge_index)[NODE, explanation.target[NODE]]
    assert_conserved(explanation.node_mask.sum(), output)
    field, _, _, edges_in_field = k_hop_subgraph(NODE, 2, data.edge_index, num_nodes=data.num_nodes)
    outside = torch.ones(data.num_nodes, dtype=torch.bool)
    outside[field] = False
    assert explanation.node_mask[outside].abs().max() == 0
    assert explanation.edge_mask[~edges_in_field].abs().max() == 0
    assert explanation.node_mask[field].abs().sum() > 0


MODELS = [*(f"graph:{kind}" for kind in CONVOLUTIONS), *(f"node:{name}" for name in BASIC_MODELS)]


def model_and_call(spec, bias=True):
    """A model with biases, and how to explain it: all graphs, or node ``NODE``."""
    level, name = spec.split(":")
    if level == "graph":
        model = graph_classifier(name, bias=bias)
        return model, lambda data, **options: explain_graphs(model, data, **options)
    model = basic_model(name, bias=bias)
    return model, lambda data, **options: explainer(model, task_level="node", **options)(
        data.x, data.edge_index, index=NODE)


@pytest.mark.parametrize("spec", MODELS)
def test_with_biases_and_epsilon_zero_lrp_is_input_x_gradient(spec):
    model, explain = model_and_call(spec)
    data = random_graphs()

    explanation = explain(data, algorithm=LRPExplainer(epsilon=0.0))

    x = data.x.clone().requires_grad_()
    output = model(x, data.edge_index, data.batch) if spec.startswith("graph") else model(x, data.edge_index)[[NODE]]
    target = explanation.target if spec.startswith("graph") else explanation.target[[NODE]]
    (gradient,) = torch.autograd.grad(output.gather(1, target.view(-1, 1)).sum(), x)
    torch.testing.assert_close(explanation.node_mask, x.detach() * gradient, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", MODELS)
def test_edge_relevance_is_finite_with_one_value_per_edge(spec):
    _, explain = model_and_call(spec)
    data = random_graphs()

    explanation = explain(data)

    assert explanation.edge_mask.shape == (data.num_edges,)
    assert torch.isfinite(explanation.edge_mask).all() and explanation.edge_mask.abs().max() > 0


def test_gcn_edge_relevance_is_each_messages_share_computed_by_hand_in_float64():
    """One GCNConv, ReLU, sum pooling, a linear head, no biases, LRP-0: edge e carries m_e . (head_t * [pre > 0])."""
    model, data = OneLayerGCN().eval(), random_graphs(dtype=torch.float64)
    explanation = explain_graphs(model, data, algorithm=LRPExplainer(epsilon=0.0))

    share, looped = gcn_message_shares(model, data, explanation.target)
    assert torch.equal(looped[:, : data.num_edges], data.edge_index)  # PyG appends the self-loops
    torch.testing.assert_close(explanation.edge_mask, share[: data.num_edges], rtol=1e-9, atol=1e-12)
    assert_conserved(share.sum(), explained_logits(model, data, explanation).sum())


def test_relevance_survives_gcn_normalisation_where_captum_lrp_loses_it():
    """On fully connected jets of 8 to 12 tracks, each GCN message is scaled by about 1 / degree."""
    model, data = graph_classifier("gcn", "sum", bias=False), jet_batch([8, 10, 12], n_features=FEATURES, seed=2)
    explanation = explain_graphs(model, data)
    logits = explained_logits(model, data, explanation)

    ours = scatter(explanation.node_mask.sum(1), data.batch, dim=0, reduce="sum")
    captum = []
    for graph in range(data.num_graphs):
        jet = data.get_example(graph)
        with epsilon_rules_for_captum(model):
            relevance = CaptumLRP(model).attribute(
                jet.x.clone().requires_grad_(), target=int(explanation.target[graph]),
                additional_forward_args=(jet.edge_index, torch.zeros(jet.num_nodes, dtype=torch.long)))
        captum.append(relevance.sum())
    captum = torch.stack(captum).detach()

    assert_conserved(ours, logits)
    lost = (1 - captum / logits).abs()
    assert lost.min() > 0.5, f"Captum's LRP kept {captum.tolist()} of {logits.tolist()}"


class Gated(nn.Module):
    def __init__(self, activation):
        super().__init__()
        self.conv, self.head, self.activation = pyg.GraphConv(FEATURES, HIDDEN), nn.Linear(HIDDEN, CLASSES), activation

    def forward(self, x, edge_index, batch):
        return self.activation(self.head(pyg.global_mean_pool(self.conv(x, edge_index).relu(), batch)))


class WithConv(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv, self.head = conv, nn.Linear(HIDDEN, CLASSES)

    def forward(self, x, edge_index, batch):
        return self.head(pyg.global_mean_pool(self.conv(x, edge_index).relu(), batch))


UNSUPPORTED = {
    "normalised SAGEConv": (lambda: WithConv(pyg.SAGEConv(FEATURES, HIDDEN, normalize=True)),
                            "conv (SAGEConv): 'normalize' has no LRP rule"),
    "exp": (lambda: Gated(torch.exp), "the model (Gated): 'exp' has no LRP rule (outside a softmax)"),
    "LogSoftmax module": (lambda: Gated(nn.LogSoftmax(-1)), "activation (LogSoftmax) has no LRP rule"),
    "log_softmax": (lambda: Gated(lambda z: z.log_softmax(-1)), "'log_softmax' has no LRP rule"),
    "normalisation": (lambda: Gated(lambda z: z / z.abs().sum(-1, keepdim=True)), "'div' divides by an "
                                                                                   "input-dependent tensor"),
}


@pytest.mark.parametrize("case", UNSUPPORTED)
def test_an_unsupported_operation_is_refused_naming_the_module(case):
    build, message = UNSUPPORTED[case]
    data = random_graphs()

    with pytest.raises(UnsupportedModuleError) as error:
        explain_graphs(build().eval(), data)
    assert message in str(error.value)


def test_lrp_refuses_outputs_that_are_not_logits():
    with pytest.raises(InputError, match="return_type='raw'"):
        Explainer(graph_classifier("gcn"), algorithm=LRPExplainer(), explanation_type="model",
                  node_mask_type="attributes", edge_mask_type="object",
                  model_config=dict(mode="multiclass_classification", task_level="graph", return_type="log_probs"))


def test_the_interaction_network_gives_the_same_node_relevance_through_pyg():
    model, data = random_hin(seed=4, n_features=6, hidden=16), jet_batch([4, 5, 3], n_features=6, seed=4)

    through_pyg = explain_graphs(model, data)
    direct = hin_captum.attribute(model, data, method="lrp", target=through_pyg.target, epsilon=TINY)

    torch.testing.assert_close(through_pyg.node_mask, direct.node, rtol=1e-5, atol=1e-6)
    assert through_pyg.edge_mask.shape == (data.num_edges,) and torch.isfinite(through_pyg.edge_mask).all()


def test_node_mask_types_are_sums_of_the_attributes():
    model, data = graph_classifier("sage"), random_graphs()
    attributes = explain_graphs(model, data).node_mask

    def masked(kind):
        return Explainer(model, algorithm=LRPExplainer(epsilon=TINY), explanation_type="model", node_mask_type=kind,
                         model_config=dict(mode="multiclass_classification", task_level="graph", return_type="raw"),
                         )(data.x, data.edge_index, batch=data.batch).node_mask

    torch.testing.assert_close(masked("object"), attributes.sum(1, keepdim=True))
    torch.testing.assert_close(masked("common_attributes"), attributes.sum(0, keepdim=True))


def test_composite_options_reach_the_rules():
    model, data = graph_classifier("gin"), random_graphs()

    epsilon = explain_graphs(model, data).node_mask
    zplus = explain_graphs(model, data, algorithm=LRPExplainer(composite="zplus", epsilon=TINY)).node_mask

    assert not torch.allclose(epsilon, zplus)
    with pytest.raises(InputError, match="match no layer"):
        explain_graphs(model, data, algorithm=LRPExplainer(rules={"nothing*": "pass"}))


def test_pyg_fidelity_and_feature_importance_plot_take_lrp_masks(tmp_path):
    model, data = graph_classifier("edge-max"), random_graphs()
    explanation = explain_graphs(model, data, threshold_config=dict(threshold_type="topk_hard", value=10))

    positive, negative = fidelity(explainer(model, threshold_config=dict(threshold_type="topk_hard", value=10)),
                                  explanation)
    explanation.visualize_feature_importance(str(tmp_path / "features.png"), top_k=5)

    assert 0 <= positive <= 1 and 0 <= negative <= 1
    assert (tmp_path / "features.png").stat().st_size > 0


class EdgeScorer(nn.Module):
    """Bias-free edge-level model: a GraphConv, then a Linear on both endpoints' embeddings, LeakyReLU in between."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = pyg.GraphConv(FEATURES, HIDDEN, bias=False)
        self.score = nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(2 * HIDDEN, 1, bias=False))

    def forward(self, x, edge_index):
        h = self.conv(x, edge_index)
        return self.score(torch.cat([h[edge_index[0]], h[edge_index[1]]], dim=1))


def explain_with(model, mode, task_level, data, **call):
    return Explainer(model.eval(), algorithm=LRPExplainer(epsilon=TINY), explanation_type="phenomenon",
                     node_mask_type="attributes", edge_mask_type="object",
                     model_config=dict(mode=mode, task_level=task_level, return_type="raw"),
                     )(data.x, data.edge_index, **call)


def test_edge_level_binary_logits_are_explained_and_class_zero_is_the_negated_logit():
    model, data = EdgeScorer(), random_graphs()
    with torch.no_grad():
        logit = model(data.x, data.edge_index)[5, 0]

    ones = explain_with(model, "binary_classification", "edge", data,
                        target=torch.ones(data.num_edges, dtype=torch.long), index=5)
    zeros = explain_with(model, "binary_classification", "edge", data,
                         target=torch.zeros(data.num_edges, dtype=torch.long), index=5)

    assert_conserved(ones.node_mask.sum(), logit)
    torch.testing.assert_close(zeros.node_mask, -ones.node_mask)


def test_node_regression_explains_the_value_itself():
    model, data = basic_model("GraphSAGE", bias=False), random_graphs()
    with torch.no_grad():
        values = model(data.x, data.edge_index)

    explanation = explain_with(model, "regression", "node", data, target=values, index=torch.tensor([2, 7]))

    assert_conserved(explanation.node_mask.sum(), values[[2, 7]].sum())
