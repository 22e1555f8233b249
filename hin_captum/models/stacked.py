"""One model call on many copies of a graph batch (interpolation steps, masking fractions)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from ..data.graphs import graph_fields
from .tagger import Tagger, as_tagger


class StackedCopies(nn.Module):
    """A tagger on ``k`` stacked copies of one graph batch: ``x [k*N, F] -> logits [k*G, C]``.

    Captum's IntegratedGradients stacks its interpolation steps along dimension 0
    and would repeat ``edge_index`` the same way, which breaks the graphs (PyG's
    ``CaptumExplainer`` therefore forces one step per pass). Here each stacked copy
    becomes its own set of graphs, with node and graph indices shifted and the
    batch's other node and edge fields (``edge_attr``, ``edge_weight``, ``pos``)
    repeated, so all steps of all graphs run in one pass. Deletion curves use it the
    same way for their masking fractions.
    """

    def __init__(self, model: nn.Module | Tagger, data: Batch) -> None:
        super().__init__()
        self.tagger = as_tagger(model)
        self.network = self.tagger.network  # a submodule, so Captum's hooks and modes reach the model
        self.data = data

    def forward(self, x: Tensor) -> Tensor:
        data = self.data
        copies = x.shape[0] // data.num_nodes
        shifts = torch.arange(copies, device=x.device)
        fields = {name: data[name].repeat(copies, *[1] * (data[name].dim() - 1)) for name in graph_fields(data)}
        stacked = Batch(
            x=x,
            edge_index=(data.edge_index[:, None, :] + (shifts * data.num_nodes)[None, :, None]).reshape(2, -1),
            batch=(data.batch[None, :] + (shifts * data.num_graphs)[:, None]).reshape(-1),
            **fields,
        )
        stacked._num_graphs = copies * data.num_graphs
        return self.tagger.logits(x, stacked)
