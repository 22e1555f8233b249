"""Random models and graphs for the tests, all seeded."""
from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from hin_captum import InteractionNetwork
from hin_captum.data.graphs import fully_connected_edge_index


def randomize_norms(model: torch.nn.Module, generator: torch.Generator, bias: bool = True) -> None:
    """Give every BatchNorm1d non-trivial running statistics and affine parameters."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * bias)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.5 * bias)


def random_hin(seed: int, n_features: int = 48, hidden: int = 128, bias: bool = True) -> InteractionNetwork:
    """An interaction network with random weights and BatchNorm statistics; bias-free on request."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = InteractionNetwork(n_features=n_features, hidden=hidden)
    randomize_norms(model, generator, bias)
    if not bias:
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.bias.data.zero_()
    return model.eval()


def jet_batch(sizes: list[int], n_features: int = 48, seed: int = 0, dtype=torch.float32) -> Batch:
    """Fully connected graphs of the given sizes with N(0, 1) features."""
    generator = torch.Generator().manual_seed(seed)
    graphs = [
        Data(x=torch.randn(size, n_features, generator=generator, dtype=dtype), edge_index=fully_connected_edge_index(size))
        for size in sizes
    ]
    return Batch.from_data_list(graphs)
