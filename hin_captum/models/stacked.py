"""One model call on many copies of a graph batch (interpolation steps, masking fractions)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class StackedCopies(nn.Module):
    """``model`` on ``k`` stacked copies of one graph batch: ``x [k*N, F] -> logits [k*G, C]``.

    Captum's IntegratedGradients stacks its interpolation steps along dimension 0
    and would repeat ``edge_index`` the same way, which breaks the graphs (PyG's
    ``CaptumExplainer`` therefore forces one step per pass). Here each stacked copy
    becomes its own set of graphs, with node and graph indices shifted, so all
    steps of all graphs run in one pass. Deletion curves use it the same way for
    their masking fractions.
    """

    def __init__(self, model: nn.Module, edge_index: Tensor, batch: Tensor, num_graphs: int) -> None:
        super().__init__()
        self.model = model
        self.edge_index, self.batch, self.num_graphs = edge_index, batch, num_graphs

    def forward(self, x: Tensor) -> Tensor:
        num_nodes = self.batch.numel()
        copies = x.shape[0] // num_nodes
        shifts = torch.arange(copies, device=x.device)
        edge_index = (self.edge_index[:, None, :] + (shifts * num_nodes)[None, :, None]).reshape(2, -1)
        batch = (self.batch[None, :] + (shifts * self.num_graphs)[:, None]).reshape(-1)
        return self.model(x, edge_index, batch)
