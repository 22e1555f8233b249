"""Attention weights as an explanation: the baseline that AttnLRP is compared with.

A track's score is the attention it receives, averaged over heads and layers:

- PyG attention layers (GATConv, GATv2Conv, TransformerConv): the coefficients
  ``alpha`` each layer passes to its ``message`` (as PyG's ``AttentionExplainer`` reads
  them), summed over the edges out of the track; ``Explanation.edge`` holds them per edge;
- weaver's ParT (through :class:`~hin_captum.models.weaver.GraphTagger`): the class
  token's attention to the particles in the class-attention blocks (the usual "ParT
  attention" picture), else the attention received in the particle blocks.

Attention says where, not which way: the score is non-negative and shared equally among
a track's features, so it ranks tracks (deletion by tracks), not features.
"""
from __future__ import annotations

import inspect
import math

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter, to_dense_batch

from ..util import InputError
from .base import AttributionMethod, register
from .explanation import Explanation, explanation_of


class _AttentionProbabilities(TorchFunctionMode):
    """Records the probabilities of every ``scaled_dot_product_attention`` call: ``[B, H, queries, keys]``."""

    def __init__(self) -> None:
        super().__init__()
        self.probabilities: list[Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") == "scaled_dot_product_attention":
            bound = {**dict(zip(("query", "key", "value", "attn_mask"), args)), **kwargs}
            query, key, mask = bound["query"], bound["key"], bound.get("attn_mask")
            logits = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
            if mask is not None:
                logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
            self.probabilities.append(logits.softmax(-1).detach())
        return func(*args, **kwargs)


@register
class AttentionMethod(AttributionMethod):
    """The attention each track receives (see the module docstring), as node relevance."""

    name = "attention"

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        with torch.no_grad():
            if any(isinstance(m, MessagePassing) and _takes_alpha(m) for m in self.model.modules()):
                score, edge, logits = self._graph_attention(data)
            elif self.tagger.arrays(data.x, data.batch) is not None:
                score, logits = self._transformer_attention(data)
                edge = None
            else:
                raise InputError(f"method 'attention' reads PyG attention layers (GATConv, GATv2Conv, TransformerConv) "
                                 f"or a weaver transformer (ParT); {type(self.model).__name__} has neither")
        node = (score / data.x.shape[1])[:, None].expand_as(data.x).contiguous()
        return explanation_of(self.name, data, target, logits, node, edge)

    def _graph_attention(self, data: Batch) -> tuple[Tensor, Tensor, Tensor]:
        alphas: list[Tensor] = []

        def keep(module, inputs, output):
            alpha = inputs[0].get("alpha") if "alpha" in inputs[0] else getattr(module, "_alpha", None)
            if alpha is not None:
                alphas.append(alpha.detach())

        handles = [m.register_message_forward_hook(keep) for m in self.model.modules()
                   if isinstance(m, MessagePassing) and _takes_alpha(m)]
        try:
            logits = self.tagger.logits(data.x, data)
        finally:
            for handle in handles:
                handle.remove()
        per_edge = torch.stack([alpha.reshape(len(alpha), -1).mean(1)[: data.num_edges] for alpha in alphas]).mean(0)
        score = scatter(per_edge, data.edge_index[0], dim=0, dim_size=data.num_nodes, reduce="sum")
        return score, per_edge[:, None], logits

    def _transformer_attention(self, data: Batch) -> tuple[Tensor, Tensor]:
        recorder = _AttentionProbabilities()
        with recorder:
            logits = self.tagger.logits(data.x, data)
        inputs = self.tagger.arrays(data.x, data.batch)
        particles = inputs[0].shape[-1]
        cls = [p.mean(1)[:, 0, -particles:] for p in recorder.probabilities if p.shape[-2] == 1]
        blocks = [p.mean(1).mean(1) for p in recorder.probabilities if p.shape[-2] == particles]
        chosen = cls or blocks
        if not chosen:
            raise InputError("method 'attention' found no attention over the particles in the model")
        dense = torch.stack(chosen).mean(0)  # [jets, particles]
        _, mask = to_dense_batch(data.x[:, :1], data.batch, max_num_nodes=particles)
        score = data.x.new_zeros(data.num_nodes)
        counts = torch.bincount(data.batch, minlength=data.num_graphs)
        kept = torch.cat([torch.arange(int(n), device=data.x.device) < particles for n in counts])
        score[kept] = dense[mask]
        return score, logits


def _takes_alpha(module: MessagePassing) -> bool:
    """Whether a message-passing layer's ``message`` receives attention coefficients."""
    return "alpha" in inspect.signature(module.message).parameters or hasattr(module, "_alpha")
