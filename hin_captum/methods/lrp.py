"""LRP through the hooks of :mod:`hin_captum.lrp`: node and edge relevance from one backward pass."""
from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn
from torch_geometric.data import Batch

from ..lrp import DEFAULT_EPSILON, LRP, ConservationReport, GatherCapture, Rule
from ..lrp.composites import Composite
from .base import AttributionMethod, register
from .explanation import Explanation, edge_scores


@register
class LRPMethod(AttributionMethod):
    """LRP with a composite of rules (epsilon by default); ``conservation=True`` adds the layer report."""

    name = "lrp"

    def __init__(
        self,
        model: nn.Module,
        composite: str | Composite | None = None,
        rules: Mapping[str, str | Rule] | None = None,
        epsilon: float = DEFAULT_EPSILON,
        conservation: bool = False,
    ) -> None:
        super().__init__(model)
        self.lrp = LRP(model, composite=composite, rules=rules, epsilon=epsilon)
        self.conservation = conservation

    def explain(self, data: Batch, target: Tensor) -> Explanation:
        hooks = self.lrp.hooks(track_conservation=self.conservation)
        x = data.x.detach().requires_grad_()
        with GatherCapture(data.edge_index) as capture:
            node = self.lrp.attribute(
                x, target=target, additional_forward_args=(data.edge_index, data.batch), hooks=hooks
            ).detach()
        logits = hooks.output
        output = logits.gather(1, target[:, None]).squeeze(1)
        edge = capture.edge_relevance()
        explanation = Explanation(
            method=self.name,
            node=node,
            output=output,
            prediction=logits.softmax(dim=1),
            target=target,
            batch=data.batch,
            edge_index=data.edge_index,
            edge=edge,
            edge_score=None if edge is None else edge_scores(edge, data.edge_index, data.batch, data.num_graphs),
        )
        if self.conservation:
            explanation.conservation = ConservationReport(
                output=output, input=explanation.node_relevance_per_graph(), layers=list(hooks.flows)
            )
        return explanation
