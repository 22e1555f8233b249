"""LRP through :mod:`hin_captum.lrp`: node and edge relevance from one backward pass, measured from a reference."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, MetaLayer

from ..lrp import COMPOSITES, ConservationReport, LRPConfig, Propagator
from ..lrp.attribution import selected_outputs
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

    def __init__(self, model: nn.Module, conservation: bool = False, **options: Any) -> None:
        super().__init__(model)
        if "relevance_at" not in options and getattr(model, "relevance_at", ()):
            options = {**options, "relevance_at": tuple(model.relevance_at)}  # the model says where (ParT's pairs)
        self.conservation = conservation
        self.reads_edges = any(isinstance(module, (MessagePassing, MetaLayer)) for module in model.modules())
        """Whether the model passes messages along ``edge_index`` (its edge relevance is read at the gathers);
        a tagger that makes its own graph (ParticleNet's kNN) or none (ParT) has no edge relevance here."""
        self.propagator = Propagator(LRPConfig.of(options, f"method '{self.name}'"))

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return ("conservation", *LRPConfig.option_names())

    @property
    def reference(self):
        """The reference point the relevance is measured from (the comparison measures deletion from it)."""
        return self.propagator.config.reference

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        own_edges = getattr(self.model, "edge_relevance", None)
        with self.model.capturing() if own_edges else nullcontext():
            result = self.propagator.propagate(
                self.model, (data.x,),
                run=lambda xs: self.model(xs[0], data.edge_index, data.batch),
                select=lambda output: selected_outputs(output, target, "graph").sum(),
                edge_index=data.edge_index if self.reads_edges else None,
                track_conservation=self.conservation,
            )
        edge = result.edge
        if edge is None and own_edges is not None:  # a tagger that reads its own pairs (ParT) or kNN (ParticleNet)
            edge = own_edges(data.batch, data.edge_index, data.ptr, result.inner)
        explanation = explanation_of(self.name, data, target, result.output, result.relevance[0], edge,
                                     reference=result.references[0])
        explanation.absorbed = explanation.output - explanation.node_relevance_per_graph()
        if edge is not None and result.edge is None:
            explanation.edge_names = getattr(self.model, "edge_names", None)
        if edge is not None and result.edge is None and getattr(self.model, "pair_embedding", None):
            graph = data.batch[data.edge_index[0]]  # ParT's pair features are explained inputs too: their share
            explanation.absorbed = explanation.absorbed - torch.zeros_like(explanation.absorbed).index_add_(
                0, graph, edge.sum(1).to(explanation.absorbed.dtype))
        if self.conservation:
            explanation.conservation = ConservationReport(
                output=explanation.output, input=explanation.node_relevance_per_graph(), layers=result.flows
            )
        return explanation


for _composite in COMPOSITES:  # lrp-<name> for every named composite: the registry, the scripts and the study use them
    register_variant(f"lrp-{_composite}", LRPMethod, composite=_composite)
