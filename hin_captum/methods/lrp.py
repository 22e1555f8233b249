"""LRP through :mod:`hin_captum.lrp`: node and edge relevance from one backward pass, measured from a reference."""
from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn
from torch_geometric.data import Batch

from ..lrp import DEFAULT_EPSILON, ConservationReport, Reference, Rule, make_composite
from ..lrp.engine import check_precision, engine_for
from ..lrp.composites import Composite
from .base import AttributionMethod, register
from .explanation import Explanation, explanation_of


@register
class LRPMethod(AttributionMethod):
    """LRP with a composite of rules; ``conservation=True`` adds the layer-by-layer report.

    Relevance is measured from ``reference`` (default: the input BatchNorm's running
    mean); what biases and epsilon keep is in ``Explanation.absorbed`` per jet.
    ``precision="tf32"`` or ``"bfloat16"`` runs the matrix products in reduced precision.
    """

    name = "lrp"
    conserves = True
    default_composite = "epsilon"

    def __init__(
        self,
        model: nn.Module,
        composite: str | Composite | None = None,
        rules: Mapping[str, str | Rule] | None = None,
        epsilon: float = DEFAULT_EPSILON,
        reference: Reference = "auto",
        conservation: bool = False,
        precision: str = "float32",
    ) -> None:
        super().__init__(model)
        self.engine = engine_for(model, make_composite(composite or self.default_composite, rules, epsilon))
        self.reference = reference
        self.conservation = conservation
        self.precision = check_precision(precision)

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        result = self.engine.propagate(
            (data.x,),
            run=lambda xs: self.model(xs[0], data.edge_index, data.batch),
            select=lambda output: output.gather(1, target[:, None]).sum(),
            reference=self.reference,
            edge_index=data.edge_index,
            track_conservation=self.conservation,
            precision=self.precision,
        )
        explanation = explanation_of(self.name, data, target, result.output, result.relevance[0], result.edge,
                                     reference=result.references[0])
        explanation.absorbed = explanation.output - explanation.node_relevance_per_graph()
        if self.conservation:
            explanation.conservation = ConservationReport(
                output=explanation.output, input=explanation.node_relevance_per_graph(), layers=result.flows
            )
        return explanation


def _register_composites() -> None:
    """``lrp-<name>`` for every named composite, so the registry, the scripts and the comparison can name them."""
    from ..lrp import COMPOSITES

    for composite in COMPOSITES:
        register(type(f"LRPMethod_{composite.replace('-', '_')}", (LRPMethod,), {
            "name": f"lrp-{composite}",
            "default_composite": composite,
            "__doc__": f"LRP with the ``{composite}`` composite (see :data:`hin_captum.lrp.COMPOSITES`).",
        }))


_register_composites()
