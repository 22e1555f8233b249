"""The Higgs interaction network (HIN) of the HIN-LRP study.

Module names follow the public HIN-LRP checkpoint exactly
(``interactionnetwork.edge_model.edge_mlp.0.weight``, ..., ``bn.running_var``),
so that checkpoint loads unchanged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing, MetaLayer, global_mean_pool


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """``Linear, BatchNorm1d, ReLU, Linear``: the block used four times in the HIN."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, n_out)
    )


class EdgeBlock(nn.Module):
    """Edge update: an MLP on ``cat[x_src, x_dst]``."""

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.edge_mlp = _mlp(2 * n_features, hidden, hidden)

    def forward(self, src: Tensor, dst: Tensor, edge_attr, u, batch) -> Tensor:
        return self.edge_mlp(torch.cat([src, dst], dim=1))


class NodeBlock(MessagePassing):
    """Node update: messages on ``cat[x[row], e]``, mean onto ``col``, then an MLP on ``cat[x, agg]``.

    A ``MessagePassing`` layer, so PyG's explain machinery (the edge masks of
    GNNExplainer and of PyG's fidelity metrics) reaches the HIN's edges: the
    edge block's output enters the prediction only through these messages.
    """

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__(aggr="mean")
        self.node_mlp_1 = _mlp(n_features + hidden, hidden, hidden)
        self.node_mlp_2 = _mlp(n_features + hidden, hidden, hidden)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, u, batch) -> Tensor:
        aggregated = self.propagate(edge_index, x=x, edge_attr=edge_attr)
        return self.node_mlp_2(torch.cat([x, aggregated], dim=1))

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return self.node_mlp_1(torch.cat([x_j, edge_attr], dim=1))


class GlobalBlock(nn.Module):
    """Graph readout: mean over each graph's nodes, then an MLP to the class logits."""

    def __init__(self, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.global_mlp = _mlp(hidden, hidden, n_classes)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr, u, batch: Tensor) -> Tensor:
        return self.global_mlp(global_mean_pool(x, batch))


@dataclass(frozen=True)
class HINConfig:
    """Sizes of the interaction network; the defaults are those of the HIN-LRP checkpoint."""

    n_features: int = 48
    hidden: int = 128
    n_classes: int = 2


class InteractionNetwork(nn.Module):
    """Graph interaction network for jet tagging: ``forward(x, edge_index, batch)`` -> logits ``[G, C]``.

    Class 0 is QCD and class 1 is Hbb. Input features go through a ``BatchNorm1d``
    first, then one edge, node and global block (PyG's ``MetaLayer``).
    """

    def __init__(self, n_features: int = 48, hidden: int = 128, n_classes: int = 2) -> None:
        super().__init__()
        self.config = HINConfig(n_features, hidden, n_classes)
        self.bn = nn.BatchNorm1d(n_features)
        self.interactionnetwork = MetaLayer(
            EdgeBlock(n_features, hidden),
            NodeBlock(n_features, hidden),
            GlobalBlock(hidden, n_classes),
        )

    @classmethod
    def from_config(cls, config: dict[str, Any] | HINConfig) -> "InteractionNetwork":
        """Build from a ``HINConfig`` or a mapping with its fields (for example ``configs/model.yml``)."""
        if isinstance(config, HINConfig):
            config = asdict(config)
        return cls(**config)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        _, _, logits = self.interactionnetwork(self.bn(x), edge_index, None, None, batch)
        return logits
