"""The tagger interface: a graph model gets the batch fields its forward names, whatever the method; node-level
models are refused in one line; the reference point comes from the model, in the input's layout."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric import nn as pyg
from torch_geometric.data import Batch, Data

import hin_captum
from hin_captum.models.tagger import GraphModel, as_tagger, forward_fields
from hin_captum.util import InputError
from tests.factories import randomize_norms

FEATURES, EDGE_FEATURES, HIDDEN = 4, 3, 8


class EdgeFeatureModel(nn.Module):
    """A graph classifier whose convolution reads edge features or edge weights: ``forward(x, edge_index,
    edge_attr, batch)``."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.bn = nn.BatchNorm1d(FEATURES)
        if kind == "gat":
            self.conv = pyg.GATConv(FEATURES, HIDDEN, heads=2, concat=False, edge_dim=EDGE_FEATURES)
        elif kind == "gine":
            self.conv = pyg.GINEConv(nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN)),
                                     edge_dim=EDGE_FEATURES)
        else:
            self.conv = pyg.GCNConv(FEATURES, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, x, edge_index, edge_attr=None, edge_weight=None, batch=None):
        h = self.bn(x)
        if self.kind == "gcn":
            h = self.conv(h, edge_index, edge_weight)
        else:
            h = self.conv(h, edge_index, edge_attr)
        return self.head(pyg.global_mean_pool(h.relu(), batch))


def graphs(n: int = 3, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        nodes = int(torch.randint(3, 7, (1,), generator=generator))
        edge_index = torch.tensor([(i, j) for i in range(nodes) for j in range(nodes) if i != j]).T
        items.append(Data(x=torch.randn(nodes, FEATURES, generator=generator), edge_index=edge_index,
                          edge_attr=torch.randn(edge_index.shape[1], EDGE_FEATURES, generator=generator),
                          edge_weight=torch.rand(edge_index.shape[1], generator=generator) + 0.1))
    return Batch.from_data_list(items)


@pytest.mark.parametrize("kind", ["gat", "gine", "gcn"])
@pytest.mark.parametrize("method", ["lrp", "inputxgradient", "ig", "saliency"])
def test_the_fields_the_forward_names_reach_the_model(kind, method):
    torch.manual_seed(1)
    model = EdgeFeatureModel(kind).eval()
    randomize_norms(model, torch.Generator().manual_seed(2))
    data = graphs()
    with torch.no_grad():
        logits = model(data.x, data.edge_index, edge_attr=data.edge_attr, edge_weight=data.edge_weight,
                       batch=data.batch)

    explanation = hin_captum.attribute(model, data, method=method, target=1)

    torch.testing.assert_close(explanation.output, logits[:, 1], rtol=1e-5, atol=1e-6)
    if method == "inputxgradient":  # the relevance is of the model with its edge fields: against autograd here
        x = data.x.clone().requires_grad_()
        out = model(x, data.edge_index, edge_attr=data.edge_attr, edge_weight=data.edge_weight, batch=data.batch)
        (gradient,) = torch.autograd.grad(out[:, 1].sum(), x)
        torch.testing.assert_close(explanation.node, (data.x - model.bn.running_mean) * gradient, rtol=1e-4,
                                   atol=1e-6)


def test_forward_fields_are_read_from_the_signature():
    assert forward_fields(EdgeFeatureModel("gat")) == ("edge_attr", "edge_weight", "batch")
    assert forward_fields(hin_captum.InteractionNetwork(4, 8)) == ("batch",)

    class Positional(nn.Module):
        def forward(self, *args):
            return args[0]

    assert forward_fields(Positional()) is None
    assert as_tagger(hin_captum.InteractionNetwork(4, 8)).network is not None
    tagger = GraphModel(hin_captum.InteractionNetwork(4, 8))
    assert as_tagger(tagger) is tagger


class NodeModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = pyg.GCNConv(FEATURES, 2)

    def forward(self, x, edge_index, batch=None):
        return self.conv(x, edge_index)


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("method", ["lrp", "inputxgradient"])
def test_a_node_level_model_is_refused_in_one_line_counting_graphs_as_graphs(n, method):
    data = graphs(n)

    with pytest.raises(InputError) as error:
        hin_captum.attribute(NodeModel(), data, method=method, target=1)

    message = str(error.value)
    assert "\n" not in message and f"{data.num_nodes} output rows for {n} graph(s)" in message
    assert "LRPExplainer" in message


def test_a_tagger_declared_node_level_is_refused_before_any_pass():
    with pytest.raises(InputError, match="declared a node-level tagger.*LRPExplainer"):
        hin_captum.attribute(GraphModel(NodeModel(), level="node"), graphs(2), method="lrp", target=1)
    with pytest.raises(InputError, match="level must be one of graph, node"):
        GraphModel(NodeModel(), level="edge")
