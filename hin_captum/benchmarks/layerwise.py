"""The algorithm of the HIN-LRP code, written here from its description, as the speed anchor of the benchmark.

One jet at a time, in float32: one forward pass keeps every layer's input; then,
from the logits down, each module (Linear and BatchNorm1d on their own, as the
HIN-LRP code has them) is evaluated again on its input and its epsilon rule applied
by autograd: ``s = R / stab(z)``, ``R_in = a * d(z . s)/da``. ReLU hands relevance on;
concatenations split it; the mean aggregation and pooling pass it on by the same
rule; the gathers by ``edge_index`` add it back onto the tracks. The relevance is
measured from zero, as in that code.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from ..models.interaction_network import InteractionNetwork
from ..lrp.affine import stabilize


def _epsilon(function, a: Tensor, relevance: Tensor, epsilon: float) -> Tensor:
    """The epsilon rule of ``z = function(a)`` by autograd: ``a * grad(z . R / stab(z))``."""
    a = a.detach().requires_grad_()
    with torch.enable_grad():
        z = function(a)
        share = (relevance / stabilize(z.detach(), epsilon)).detach()
        (gradient,) = torch.autograd.grad((z * share).sum(), a)
    return a.detach() * gradient


def _mlp(sequential: nn.Sequential, a: Tensor) -> list[Tensor]:
    """The input of every module of ``Linear, BatchNorm1d, ReLU, Linear`` and the output, in order."""
    inputs = [a]
    for module in sequential:
        inputs.append(module(inputs[-1]))
    return inputs


def _mlp_relevance(sequential: nn.Sequential, inputs: list[Tensor], relevance: Tensor, epsilon: float) -> Tensor:
    for module, a in zip(reversed(list(sequential)), reversed(inputs[:-1])):
        if isinstance(module, nn.ReLU):
            continue  # relevance of a ReLU's output is that of its input
        relevance = _epsilon(module, a, relevance, epsilon)
    return relevance


@torch.no_grad()
def layerwise_relevance(model: InteractionNetwork, x: Tensor, edge_index: Tensor, target: int,
                        epsilon: float = 1e-9) -> Tensor:
    """Relevance ``[tracks, features]`` of one jet for the ``target`` logit, layer by layer (see the module)."""
    net = model.interactionnetwork
    row, col = edge_index
    n_features = x.shape[1]
    xb = model.bn(x)
    edge_in = torch.cat([xb[row], xb[col]], 1)
    edge_acts = _mlp(net.edge_model.edge_mlp, edge_in)
    message_in = torch.cat([xb[row], edge_acts[-1]], 1)
    message_acts = _mlp(net.node_model.node_mlp_1, message_in)
    aggregated = scatter(message_acts[-1], col, dim=0, dim_size=x.shape[0], reduce="mean")
    node_in = torch.cat([xb, aggregated], 1)
    node_acts = _mlp(net.node_model.node_mlp_2, node_in)
    pooled = node_acts[-1].mean(0, keepdim=True)
    global_acts = _mlp(net.global_model.global_mlp, pooled)

    logits = global_acts[-1]
    relevance = torch.zeros_like(logits)
    relevance[0, target] = logits[0, target]
    relevance = _mlp_relevance(net.global_model.global_mlp, global_acts, relevance, epsilon)
    relevance = _epsilon(lambda h: h.mean(0, keepdim=True), node_acts[-1], relevance, epsilon)
    relevance = _mlp_relevance(net.node_model.node_mlp_2, node_acts, relevance, epsilon)
    r_xb, r_aggregated = relevance[:, :n_features], relevance[:, n_features:]
    r_messages = _epsilon(lambda m: scatter(m, col, dim=0, dim_size=x.shape[0], reduce="mean"), message_acts[-1],
                          r_aggregated, epsilon)
    r_message_in = _mlp_relevance(net.node_model.node_mlp_1, message_acts, r_messages, epsilon)
    r_edge_in = _mlp_relevance(net.edge_model.edge_mlp, edge_acts, r_message_in[:, n_features:], epsilon)
    r_xb = r_xb.index_add(0, row, r_message_in[:, :n_features] + r_edge_in[:, :n_features])
    r_xb = r_xb.index_add(0, col, r_edge_in[:, n_features:])
    return _epsilon(model.bn, x, r_xb, epsilon)
