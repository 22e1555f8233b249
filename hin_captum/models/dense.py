"""A dense view of graph batches, for tools that treat dimension 0 as the examples.

Captum's ``infidelity`` and ``sensitivity_max`` repeat every input and every
additional argument along dimension 0. For a graph batch, dimension 0 of ``x``
counts nodes and ``edge_index`` has no batch dimension at all, so the repeats
would break the graphs. Padded per-graph tensors ``[G, N_max, ...]`` repeat
correctly, and :class:`DenseGraphModel` turns them back into a graph batch.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.utils import to_dense_batch

from .tagger import Tagger, as_tagger


def to_dense(data: Batch) -> tuple[Tensor, Tensor, Tensor]:
    """``x [G, N_max, F]`` (zero padded), local ``edges [G, 2, E_max]`` (padded with -1) and ``num_nodes [G]``."""
    x, _ = to_dense_batch(data.x, data.batch, batch_size=data.num_graphs)
    num_nodes = torch.bincount(data.batch, minlength=data.num_graphs)
    first_node = torch.cumsum(num_nodes, 0) - num_nodes
    edge_graph = data.batch[data.edge_index[0]]
    num_edges = torch.bincount(edge_graph, minlength=data.num_graphs)
    slot = torch.arange(edge_graph.numel(), device=x.device) - (torch.cumsum(num_edges, 0) - num_edges)[edge_graph]
    edges = torch.full((data.num_graphs, 2, int(num_edges.max())), -1, dtype=torch.long, device=x.device)
    edges[edge_graph, :, slot] = (data.edge_index - first_node[edge_graph]).T
    return x, edges, num_nodes


def from_dense(x: Tensor, edges: Tensor, num_nodes: Tensor) -> Batch:
    """The graph batch that the padded tensors of :func:`to_dense` describe (inverse of ``to_dense``)."""
    n_graphs, n_max = x.shape[:2]
    node_mask = torch.arange(n_max, device=x.device) < num_nodes[:, None]
    first_node = torch.cumsum(num_nodes, 0) - num_nodes
    edge_mask = edges[:, 0] >= 0
    edge_index = (edges + first_node[:, None, None]).permute(1, 0, 2)[:, edge_mask]
    batch = torch.repeat_interleave(torch.arange(n_graphs, device=x.device), num_nodes)
    ptr = torch.cat([first_node, num_nodes.sum().reshape(1)])
    return Batch(x=x[node_mask], edge_index=edge_index, batch=batch, ptr=ptr)


class DenseGraphModel(nn.Module):
    """Wraps a tagger (or a graph model) to take the padded tensors of :func:`to_dense` (graphs without edge
    fields)."""

    def __init__(self, model: nn.Module | Tagger) -> None:
        super().__init__()
        self.tagger = as_tagger(model)
        self.network = self.tagger.network

    def forward(self, x: Tensor, edges: Tensor, num_nodes: Tensor) -> Tensor:
        data = from_dense(x, edges, num_nodes)
        return self.tagger.logits(data.x, data)
