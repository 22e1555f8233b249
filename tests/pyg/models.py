"""Small PyG models of every kind LRP covers, with random weights and statistics; bias-free on request."""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric import nn as pyg
from torch_geometric.data import Batch, Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import erdos_renyi_graph

from tests.factories import randomize_norms

FEATURES, HIDDEN, CLASSES = 5, 16, 3
CONVOLUTIONS = ["gcn", "graph", "gin", "sage", "edge-max", "edge-mean"]
POOLS = {"mean": pyg.global_mean_pool, "sum": pyg.global_add_pool, "max": pyg.global_max_pool}
BASIC_MODELS = {
    "GCN": (pyg.models.GCN, {}),
    "GIN": (pyg.models.GIN, {}),
    "GraphSAGE": (pyg.models.GraphSAGE, {}),
    "EdgeCNN": (pyg.models.EdgeCNN, {}),
    "GCN jk=cat": (pyg.models.GCN, {"jk": "cat"}),
    "GIN norm=batch_norm": (pyg.models.GIN, {"norm": "batch_norm"}),
    "GraphSAGE aggr=max": (pyg.models.GraphSAGE, {"aggr": "max"}),
}
"""PyG's basic models (``torch_geometric.nn.models``), some with options that change their layers."""


def mlp(width_in: int, width_out: int, bias: bool) -> nn.Sequential:
    """Linear, BatchNorm, ReLU, Linear: the MLP inside GINConv and EdgeConv, and the classifier head."""
    return nn.Sequential(nn.Linear(width_in, HIDDEN, bias=bias), nn.BatchNorm1d(HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, width_out, bias=bias))


def convolution(kind: str, width_in: int, bias: bool) -> nn.Module:
    if kind == "gcn":
        return pyg.GCNConv(width_in, HIDDEN, bias=bias)
    if kind == "graph":
        return pyg.GraphConv(width_in, HIDDEN, bias=bias)
    if kind == "gin":
        return pyg.GINConv(mlp(width_in, HIDDEN, bias), train_eps=True)
    if kind == "sage":
        return pyg.SAGEConv(width_in, HIDDEN, bias=bias)
    if kind.startswith("edge-"):
        return pyg.EdgeConv(mlp(2 * width_in, HIDDEN, bias), aggr=kind.removeprefix("edge-"))
    raise ValueError(kind)


class GraphClassifier(nn.Module):
    """Two convolutions with ReLU, a global pooling and an MLP head: ``forward(x, edge_index, batch) -> [G, C]``."""

    def __init__(self, kind: str, pool: str, bias: bool) -> None:
        super().__init__()
        self.convs = nn.ModuleList([convolution(kind, FEATURES, bias), convolution(kind, HIDDEN, bias)])
        self.pool = POOLS[pool]
        self.head = mlp(HIDDEN, CLASSES, bias)

    def forward(self, x, edge_index, batch):
        for conv in self.convs:
            x = conv(x, edge_index).relu()
        return self.head(self.pool(x, batch))


def randomized(model: nn.Module, seed: int, bias: bool) -> nn.Module:
    """``model`` in eval mode with random BatchNorm statistics, GIN's eps at 0.3, and random biases or none.

    PyG starts GCNConv's bias at zero; random biases make every bias matter.
    """
    generator = torch.Generator().manual_seed(seed)
    randomize_norms(model, generator, bias)
    for name, parameter in model.named_parameters():
        if name.endswith("eps"):
            parameter.data.fill_(0.3)
        elif name.endswith("bias"):
            parameter.data.copy_(0.1 * torch.randn(parameter.shape, generator=generator) * bias)
    return model.eval()


def graph_classifier(kind: str, pool: str = "mean", bias: bool = True, seed: int = 0) -> GraphClassifier:
    torch.manual_seed(seed)
    return randomized(GraphClassifier(kind, pool, bias), seed, bias)


def basic_model(name: str, bias: bool = True, seed: int = 0) -> nn.Module:
    """One of :data:`BASIC_MODELS`, two layers, one output per node and class."""
    torch.manual_seed(seed)
    model, options = BASIC_MODELS[name]
    return randomized(model(FEATURES, HIDDEN, num_layers=2, out_channels=CLASSES, **options), seed, bias)


def random_graphs(sizes=(6, 9, 4), seed: int = 0, dtype=torch.float32) -> Batch:
    """Directed Erdos-Renyi graphs (p = 0.4) with N(0, 1) features, batched."""
    torch.manual_seed(seed)
    return Batch.from_data_list([
        Data(x=torch.randn(size, FEATURES, dtype=dtype), edge_index=erdos_renyi_graph(size, 0.4, directed=True))
        for size in sizes
    ])


class OneLayerGCN(nn.Module):
    """A bias-free GCNConv, ReLU, sum pooling and a bias-free linear head, in float64: small enough to do by hand."""

    def __init__(self, hidden: int = HIDDEN, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = pyg.GCNConv(FEATURES, hidden, bias=False).double()
        self.head = nn.Linear(hidden, CLASSES, bias=False).double()

    def forward(self, x, edge_index, batch):
        return self.head(pyg.global_add_pool(self.conv(x, edge_index).relu(), batch))


def gcn_message_shares(model: OneLayerGCN, data: Batch, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LRP-0 by hand: message ``e`` of the GCN's looped graph carries ``m_e . (head_t * [pre > 0])`` at its destination.

    Returns the share of every looped edge (input edges first, then PyG's self-loops) and the looped ``edge_index``.
    """
    looped, weight = gcn_norm(data.edge_index, num_nodes=data.num_nodes, add_self_loops=True, dtype=data.x.dtype)
    source, destination = looped
    messages = weight[:, None] * (data.x @ model.conv.lin.weight.T)[source]
    pre = torch.zeros(data.num_nodes, messages.shape[1], dtype=data.x.dtype).index_add_(0, destination, messages)
    upper = model.head.weight[targets[data.batch]] * (pre > 0)
    return (messages * upper[destination]).sum(1), looped
