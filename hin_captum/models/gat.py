"""A graph attention tagger (PyG's GATConv) on the fully connected jet graphs: the attention model of the
benchmark beside the HIN, ParticleNet and ParT."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor, nn
from torch_geometric import nn as pyg


@dataclass(frozen=True)
class GATConfig:
    """Sizes of the tagger: input BatchNorm, ``layers`` GATConv layers of ``heads`` heads, mean pooling, an MLP."""

    n_features: int = 48
    hidden: int = 32
    heads: int = 4
    layers: int = 2
    n_classes: int = 2


class GATTagger(nn.Module):
    """``forward(x, edge_index, batch) -> logits [G, C]``: BatchNorm1d, GATConv + ReLU (heads averaged), mean pooling,
    Linear-ReLU-Linear. Class 0 is QCD, class 1 Hbb."""

    def __init__(self, n_features: int = 48, hidden: int = 32, heads: int = 4, layers: int = 2,
                 n_classes: int = 2) -> None:
        super().__init__()
        self.config = GATConfig(n_features, hidden, heads, layers, n_classes)
        self.bn = nn.BatchNorm1d(n_features)
        widths = [n_features] + [hidden] * layers
        self.convs = nn.ModuleList([pyg.GATConv(a, b, heads=heads, concat=False, add_self_loops=False)
                                    for a, b in zip(widths, widths[1:])])
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    @classmethod
    def from_config(cls, config: dict[str, Any] | GATConfig) -> "GATTagger":
        return cls(**(asdict(config) if isinstance(config, GATConfig) else config))

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=edge_index.dtype)
        h = self.bn(x)
        for conv in self.convs:
            h = conv(h, edge_index).relu()
        return self.head(pyg.global_mean_pool(h, batch))
