"""Integrated Gradients (Captum) with the interpolation steps batched as a disjoint union of graphs."""
from __future__ import annotations

from captum.attr import IntegratedGradients
from torch import Tensor, nn
from torch_geometric.data import Batch

from ..errors import InputError
from ..models.stacked import StackedCopies
from .base import AttributionMethod, register
from .explanation import Explanation, explanation_of


@register
class IntegratedGradientsMethod(AttributionMethod):
    """Integrated Gradients from a constant ``baseline`` in ``n_steps`` (Gauss-Legendre by default).

    ``steps_per_pass`` bounds memory: that many interpolation steps of the whole
    batch go through the model at once. ``conservation`` is not defined; IG's own
    completeness (relevance sums to ``f(x) - f(baseline)``) is tested instead.
    """

    name = "ig"

    def __init__(
        self,
        model: nn.Module,
        n_steps: int = 50,
        baseline: float = 0.0,
        integration: str = "gausslegendre",
        steps_per_pass: int = 10,
    ) -> None:
        super().__init__(model)
        if n_steps < 1 or steps_per_pass < 1:
            raise InputError(f"ig needs n_steps >= 1 and steps_per_pass >= 1, got {n_steps} and {steps_per_pass}")
        self.n_steps, self.baseline, self.integration = n_steps, float(baseline), integration
        self.steps_per_pass = steps_per_pass

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        ig = IntegratedGradients(StackedCopies(self.model, data.edge_index, data.batch, data.num_graphs))
        node = ig.attribute(
            data.x.detach(),
            baselines=self.baseline,
            target=target,
            n_steps=self.n_steps,
            method=self.integration,
            internal_batch_size=data.num_nodes * min(self.steps_per_pass, self.n_steps),
        )
        return explanation_of(self.name, data, target, self.logits(data), node)
