"""Gated graph convolutions (ResGatedGraphConv): a message's sigmoid gate is held constant (CP-LRP through the gate),
so relevance stays bounded and, without biases, adds up exactly to the explained logit."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric import nn as pyg
from torch_geometric.data import Batch, Data

import hin_captum


class GatedNet(nn.Module):
    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.convs = nn.ModuleList([pyg.ResGatedGraphConv(4, 16, bias=bias), pyg.ResGatedGraphConv(16, 16, bias=bias)])
        self.head = nn.Linear(16, 2, bias=bias)
        if not bias:  # ResGatedGraphConv's key, query and value maps keep a bias whatever its option says
            for module in self.modules():
                if isinstance(module, pyg.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x, edge_index, batch=None):
        for conv in self.convs:
            x = conv(x, edge_index).relu()
        return self.head(pyg.global_add_pool(x, batch))


def graphs() -> Batch:
    generator = torch.Generator().manual_seed(1)
    items = []
    for n in (5, 7, 6):
        edge_index = torch.tensor([(i, j) for i in range(n) for j in range(n) if i != j]).T
        items.append(Data(x=torch.randn(n, 4, generator=generator), edge_index=edge_index))
    return Batch.from_data_list(items)


@pytest.mark.parametrize("attention", ["attnlrp", "cp"])
def test_without_biases_relevance_adds_up_to_the_logit(attention):
    torch.manual_seed(0)
    model = GatedNet(bias=False).double().eval()
    data = graphs()
    data.x = data.x.double()

    explanation = hin_captum.attribute(model, data, "lrp", target=1, attention=attention, epsilon=0.0,
                                       reference="zero")

    torch.testing.assert_close(explanation.node_relevance_per_graph(), explanation.output, rtol=1e-9, atol=1e-12)


def test_the_gate_gets_no_relevance_the_value_and_skip_paths_get_all_of_it():
    """Against autograd with the gate detached by hand: input x gradient of the same network whose message is
    ``sigmoid(k_i + q_j).detach() * v_j``."""
    torch.manual_seed(3)
    model = GatedNet(bias=False).double().eval()
    data = graphs()
    x = data.x.double().requires_grad_()

    def detached_message(self, k_i, q_j, v_j, edge_attr):
        return self.act(k_i + q_j).detach() * v_j

    original = pyg.ResGatedGraphConv.message
    pyg.ResGatedGraphConv.message = detached_message
    try:
        output = model(x, data.edge_index, data.batch)
        (gradient,) = torch.autograd.grad(output[:, 1].sum(), x)
    finally:
        pyg.ResGatedGraphConv.message = original

    explanation = hin_captum.attribute(model, Batch(x=x.detach(), edge_index=data.edge_index, batch=data.batch,
                                                    ptr=data.ptr), "lrp", target=1, epsilon=0.0, reference="zero")
    torch.testing.assert_close(explanation.node, x.detach() * gradient, rtol=1e-9, atol=1e-12)
