"""A random explanation: the floor every method must beat on faithfulness."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from .base import AttributionMethod, register
from .explanation import Explanation, explanation_of


@register
class RandomMethod(AttributionMethod):
    """Standard normal relevance for every node feature and edge, from its own seeded generator."""

    name = "random"

    def __init__(self, model: nn.Module, seed: int = 0) -> None:
        super().__init__(model)
        self.seed = seed

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        generator = torch.Generator(device=data.x.device).manual_seed(self.seed)
        node = torch.randn(data.x.shape, generator=generator, device=data.x.device)
        edge = torch.randn((data.num_edges, 1), generator=generator, device=data.x.device)
        return explanation_of(self.name, data, target, self.logits(data), node, edge)
