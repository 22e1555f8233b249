"""Integrated Gradients (Captum) with the interpolation steps batched as a disjoint union of graphs."""
from __future__ import annotations

from captum.attr import IntegratedGradients
from torch import Tensor, nn
from torch_geometric.data import Batch

from ..util import InputError
from ..lrp.reference import Reference
from ..models.tagger import jet_reference
from ..models.stacked import StackedCopies
from .base import AttributionMethod, register
from .explanation import Explanation, explanation_of


@register
class IntegratedGradientsMethod(AttributionMethod):
    """Integrated Gradients from the ``reference`` point in ``n_steps`` (Gauss-Legendre by default).

    The baseline is the same reference point LRP measures from (default: the input
    BatchNorm's running mean), so both answer the same question. ``steps_per_pass``
    bounds memory: that many interpolation steps of the whole batch go through the
    model at once. IG's completeness (relevance sums to ``f(x) - f(reference)``) is tested.
    """

    name = "ig"
    conserves = True

    def __init__(
        self,
        model: nn.Module,
        n_steps: int = 50,
        reference: Reference = "auto",
        integration: str = "gausslegendre",
        steps_per_pass: int = 10,
    ) -> None:
        super().__init__(model)
        if n_steps < 1 or steps_per_pass < 1:
            raise InputError(f"ig needs n_steps >= 1 and steps_per_pass >= 1, got {n_steps} and {steps_per_pass}")
        self.n_steps, self.reference, self.integration = n_steps, reference, integration
        self.steps_per_pass = steps_per_pass

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        reference = jet_reference(self.reference, self.tagger, data)
        ig = IntegratedGradients(StackedCopies(self.tagger, data))
        node = ig.attribute(
            data.x.detach(),
            baselines=reference.expand_as(data.x).contiguous(),
            target=target,
            n_steps=self.n_steps,
            method=self.integration,
            internal_batch_size=data.num_nodes * min(self.steps_per_pass, self.n_steps),
        )
        return explanation_of(self.name, data, target, self.logits(data), node, reference=reference)
