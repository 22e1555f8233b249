"""LRP through :mod:`hin_captum.lrp`: node and edge relevance from one backward pass, measured from a reference."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, MetaLayer

from ..lrp import COMPOSITES, ConservationReport, LRPConfig, Propagator
from ..lrp.attribution import selected_outputs
from ..lrp.reference import Reference, is_auto
from ..models.tagger import Tagger
from .base import AttributionMethod, register, register_variant
from .explanation import Explanation, explanation_of


@register
class LRPMethod(AttributionMethod):
    """LRP with a composite of rules; ``conservation=True`` adds the layer-by-layer report.

    ``options`` are those of :class:`~hin_captum.lrp.config.LRPConfig` (composite,
    rules, epsilon, reference, precision). Relevance is measured from the reference
    (default: the input BatchNorm's running mean); what biases and epsilon keep is in
    ``Explanation.absorbed`` per jet.
    """

    name = "lrp"
    conserves = True

    def __init__(self, model: nn.Module | Tagger, conservation: bool = False, **options: Any) -> None:
        super().__init__(model)
        if "relevance_at" not in options and self.tagger.relevance_at:
            options = {**options, "relevance_at": self.tagger.relevance_at}  # the tagger says where (ParT's pairs)
        self.conservation = conservation
        self.reads_edges = self.tagger.uses_edges and any(
            isinstance(module, (MessagePassing, MetaLayer)) for module in self.model.modules())
        """Whether the model passes messages along ``edge_index`` (its edge relevance is read at the gathers);
        a tagger that makes its own graph (ParticleNet's kNN) or none (ParT) gives its pairs' relevance itself."""
        self.propagator = Propagator(LRPConfig.of(options, f"method '{self.name}'"))

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return ("conservation", *LRPConfig.option_names())

    @property
    def reference(self) -> Reference:
        """The reference point the relevance is measured from (the comparison measures deletion from it)."""
        return self.propagator.config.reference

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        tagger = self.tagger
        reference = self.reference
        own = tagger.reference_point(data.x) if is_auto(reference) else None
        with tagger.recording():
            result = self.propagator.propagate(
                self.model, (data.x,),
                run=lambda xs: tagger.logits(xs[0], data),
                select=lambda output: selected_outputs(output, target, "graph", rows=data.num_graphs).sum(),
                edge_index=data.edge_index if self.reads_edges else None,
                track_conservation=self.conservation,
                reference=own,
            )
            pairs = None if result.edge is not None else tagger.pair_relevance(data, result.inner)
        edge_index, edge = (data.edge_index, result.edge) if pairs is None else pairs
        explanation = explanation_of(self.name, data, target, result.output, result.relevance[0], edge,
                                     reference=result.references[0], edge_index=edge_index)
        explanation.absorbed = explanation.output - explanation.node_relevance_per_graph()
        if pairs is not None:
            explanation.edge_names = tagger.pair_names
            if tagger.pairs_are_inputs:  # ParT's pair features are explained inputs too: their share counts
                graph = data.batch[edge_index[0]]
                explanation.absorbed = explanation.absorbed - torch.zeros_like(explanation.absorbed).index_add_(
                    0, graph, edge.sum(1).to(explanation.absorbed.dtype))
        if self.conservation:
            explanation.conservation = ConservationReport(
                output=explanation.output, input=explanation.node_relevance_per_graph(), layers=result.flows
            )
        return explanation


for _composite in COMPOSITES:  # lrp-<name> for every named composite: the registry, the scripts and the study use them
    register_variant(f"lrp-{_composite}", LRPMethod, composite=_composite)
