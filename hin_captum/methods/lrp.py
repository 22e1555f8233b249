"""LRP through the hooks of :mod:`hin_captum.lrp`: node and edge relevance from one backward pass."""
from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn
from torch_geometric.data import Batch

from ..lrp import DEFAULT_EPSILON, LRP, ConservationReport, GatherCapture, Rule
from ..lrp.composites import Composite
from .base import AttributionMethod, register
from .explanation import Explanation, explanation_of


@register
class LRPMethod(AttributionMethod):
    """LRP with a composite of rules (epsilon by default); ``conservation=True`` adds the layer report."""

    name = "lrp"
    conserves = True
    default_composite = "epsilon"

    def __init__(
        self,
        model: nn.Module,
        composite: str | Composite | None = None,
        rules: Mapping[str, str | Rule] | None = None,
        epsilon: float = DEFAULT_EPSILON,
        conservation: bool = False,
    ) -> None:
        super().__init__(model)
        self.lrp = LRP(model, composite=composite or self.default_composite, rules=rules, epsilon=epsilon)
        self.conservation = conservation

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        hooks = self.lrp.hooks(track_conservation=self.conservation)
        x = data.x.detach().requires_grad_()
        with GatherCapture(data.edge_index) as capture:
            node = self.lrp.attribute(
                x, target=target, additional_forward_args=(data.edge_index, data.batch), hooks=hooks
            ).detach()
        explanation = explanation_of(self.name, data, target, hooks.output, node, capture.edge_relevance())
        if self.conservation:
            explanation.conservation = ConservationReport(
                output=explanation.output, input=explanation.node_relevance_per_graph(), layers=list(hooks.flows)
            )
        return explanation


@register
class LRPGammaMethod(LRPMethod):
    """LRP with the ``gamma`` composite: gamma-rule in hidden layers, epsilon at the output."""

    name = "lrp-gamma"
    default_composite = "gamma"


@register
class LRPZPlusMethod(LRPMethod):
    """LRP with the ``zplus`` composite: z+ in hidden layers, epsilon at the output."""

    name = "lrp-zplus"
    default_composite = "zplus"
