"""The interface every attribution method implements, and the registry behind ``attribute()``."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ..errors import InputError
from .explanation import Explanation, as_batch

METHODS: dict[str, type["AttributionMethod"]] = {}


def register(cls: type["AttributionMethod"]) -> type["AttributionMethod"]:
    """Class decorator: make a method available to ``attribute(..., method=cls.name)``."""
    METHODS[cls.name] = cls
    return cls


class AttributionMethod(ABC):
    """Explains a graph classifier ``model(x, edge_index, batch) -> [G, C]`` for a batch of graphs."""

    name: str = ""

    def __init__(self, model: nn.Module, **options: Any) -> None:
        if options:
            raise InputError(f"method '{self.name}' takes no option(s) {', '.join(sorted(options))}")
        self.model = model

    @abstractmethod
    def explain(self, data: Batch, target: Tensor) -> Explanation:
        """Relevance for ``target[g]`` of every graph ``g`` in ``data``."""


def per_graph_target(target: int | Tensor, num_graphs: int, device: torch.device) -> Tensor:
    """One class index per graph from an int or a ``[G]`` tensor."""
    if isinstance(target, int):
        return torch.full((num_graphs,), target, dtype=torch.long, device=device)
    if isinstance(target, Tensor) and target.dim() <= 1 and target.numel() in (1, num_graphs):
        return target.to(device=device, dtype=torch.long).reshape(-1).expand(num_graphs).clone()
    raise InputError(f"target must be an int or a tensor of {num_graphs} class indices, got {target!r}")


def attribute(
    model: nn.Module, data: Data | Batch, method: str = "lrp", target: int | Tensor = 1, **options: Any
) -> Explanation:
    """Explain ``model`` on one graph or a batch with the named method; ``options`` go to the method."""
    if method not in METHODS:
        raise InputError(f"unknown method '{method}': use one of {', '.join(sorted(METHODS))}")
    batch = as_batch(data)
    return METHODS[method](model, **options).explain(batch, per_graph_target(target, batch.num_graphs, batch.x.device))


