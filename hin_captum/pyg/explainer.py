"""LRP as a PyG ``ExplainerAlgorithm``: node-feature and edge relevance from one backward pass.

    explainer = Explainer(model, algorithm=LRPExplainer(), explanation_type="model",
                          node_mask_type="attributes", edge_mask_type="object",
                          model_config=dict(mode="multiclass_classification", task_level="graph",
                                            return_type="raw"))
    explanation = explainer(data.x, data.edge_index, batch=data.batch)

The masks are signed relevance, not importances in [0, 1]: ``node_mask`` sums
(over nodes and features) to the explained outputs, up to what biases and epsilon
keep, and ``edge_mask`` is the relevance through each edge, read at the gathers of
node features by ``edge_index`` (a layer's own self-loops stay with their nodes).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.explain import Explanation
from torch_geometric.explain.algorithm import ExplainerAlgorithm
from torch_geometric.explain.config import MaskType, ModelMode, ModelReturnType
from torch_geometric.nn import MessagePassing

from ..lrp import LRPConfig, Propagator
from ..lrp.attribution import selected_outputs
from ..util import InputError

NODE_MASK_TYPES = (None, MaskType.attributes, MaskType.object, MaskType.common_attributes)
EDGE_MASK_TYPES = (None, MaskType.object)


class LRPExplainer(ExplainerAlgorithm):
    """Layer-wise relevance propagation through the hooks of :mod:`hin_captum.lrp`.

    Works for graph-, node- and edge-level tasks (``index`` picks the outputs to
    explain) on models made of Linear/BatchNorm1d layers, ReLU, message passing whose
    weights sit in Linear layers (GCNConv, GraphConv, GINConv, SAGEConv, EdgeConv,
    the interaction network) and sum, mean or max aggregation and pooling. Anything
    else (attention, sigmoid or tanh gates, a final softmax) is refused by name.
    ``options`` are those of :class:`~hin_captum.lrp.config.LRPConfig`, as for
    ``hin_captum.attribute(..., method="lrp")``, the reference point included.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.propagator = Propagator(LRPConfig.of(options, "LRPExplainer"))

    def supports(self) -> bool:
        config, model = self.explainer_config, self.model_config
        if model.return_type != ModelReturnType.raw:
            raise InputError(f"LRPExplainer explains raw outputs (logits), not return_type='{model.return_type.value}': "
                             "drop the model's final (log_)softmax or sigmoid and use return_type='raw'")
        if config.node_mask_type not in NODE_MASK_TYPES or config.edge_mask_type not in EDGE_MASK_TYPES:
            raise InputError(f"LRPExplainer gives node masks of type {', '.join(t.value for t in NODE_MASK_TYPES[1:])} "
                             f"and edge masks of type object, not node_mask_type={config.node_mask_type} "
                             f"and edge_mask_type={config.edge_mask_type}")
        return True

    def forward(
        self,
        model: nn.Module,
        x: Tensor,
        edge_index: Tensor,
        *,
        target: Tensor,
        index: int | Tensor | None = None,
        **kwargs: Any,
    ) -> Explanation:
        edges = self.explainer_config.edge_mask_type is not None
        if edges and not any(isinstance(module, MessagePassing) for module in model.modules()):
            raise InputError(f"{type(model).__name__} has no MessagePassing layer, so no edge relevance: "
                             "explain it with edge_mask_type=None")
        result = self.propagator.propagate(
            model, (x,),
            run=lambda xs: model(xs[0], edge_index, **kwargs),
            select=lambda output: self._explained_output(output, target, index),
            edge_index=edge_index if edges else None,
        )
        node = result.relevance[0]
        edge = None
        if edges:
            edge = torch.zeros(edge_index.shape[1], dtype=x.dtype, device=x.device) if result.edge is None \
                else result.edge.sum(1)
        return Explanation(node_mask=self._node_mask(node), edge_mask=edge)

    def _explained_output(self, output: Tensor, target: Tensor, index: int | Tensor | None) -> Tensor:
        """The sum of the explained outputs: the target logit of every selected row (or the value, for regression)."""
        if index is not None:
            output, target = output[index], target[index]
        mode = self.model_config.mode
        if mode == ModelMode.multiclass_classification:
            return selected_outputs(output.reshape(-1, output.size(-1)), target.reshape(-1), "row").sum()
        if mode == ModelMode.binary_classification:  # class 0 is explained by the negated logit
            return (output.reshape(-1) * (2 * target.reshape(-1) - 1)).sum()
        return output.sum()

    def _node_mask(self, relevance: Tensor) -> Tensor | None:
        kind = self.explainer_config.node_mask_type
        if kind is None:
            return None
        if kind == MaskType.object:
            return relevance.sum(1, keepdim=True)
        if kind == MaskType.common_attributes:
            return relevance.sum(0, keepdim=True)
        return relevance

