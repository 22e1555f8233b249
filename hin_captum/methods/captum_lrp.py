"""Captum's own LRP, with the rules it lacks set by hand, to show what the hooks of hin_captum fix."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from captum.attr import LRP as CaptumLRP
from captum.attr._utils.lrp_rules import EpsilonRule
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn.aggr import Aggregation
from torch_geometric.nn.dense.linear import Linear as PyGLinear

from .base import AttributionMethod, register, single_graphs
from .captum_attribution import recorded_output
from .explanation import Explanation, explanation_of


@contextmanager
def epsilon_rules_for_captum(model: nn.Module) -> Iterator[None]:
    """Give ``BatchNorm1d``, PyG's ``Linear`` and PyG aggregations Captum's ``EpsilonRule``, which Captum refuses to guess.

    Captum leaves ``rule`` and ``activations`` attributes on modules (always after
    an error); every one it adds is removed here, so the model is as it was.
    """
    before = {module: set(vars(module)) for module in model.modules()}
    try:
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, PyGLinear, Aggregation)):
                module.rule = EpsilonRule()
        yield
    finally:
        for module, names in before.items():
            for name in ("rule", "activations"):
                if name in vars(module) and name not in names:
                    delattr(module, name)


@register
class CaptumLRPMethod(AttributionMethod):
    """``captum.attr.LRP`` (epsilon rules), one jet per call.

    Captum's LRP normalises relevance per example along dimension 0 of both the
    input and the output, so it cannot take a batch of graphs; and it turns the
    gradient into relevance at every module, so relevance is not conserved
    through message passing. Both are what this comparison shows.
    """

    name = "captum-lrp"
    conserves = True
    one_graph_at_a_time = True

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        node = torch.zeros_like(data.x)
        logits = []
        for index, (nodes, _, graph) in enumerate(single_graphs(data)):
            with epsilon_rules_for_captum(self.model), recorded_output(self.model) as outputs:
                relevance = CaptumLRP(self.model).attribute(
                    graph.x.detach().clone().requires_grad_(),
                    target=int(target[index]),
                    additional_forward_args=(graph.edge_index, graph.batch),
                )
            node[nodes] = relevance.detach()
            logits.append(outputs[0])
        return explanation_of(self.name, data, target, torch.cat(logits), node)
