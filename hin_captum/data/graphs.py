"""Jets as fully connected graphs of their tracks."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from ..util import InputError

# PyG offsets every attribute whose name contains "index" by the node count
# when it batches graphs. These per-jet bookkeeping indices point into the input
# files and track lists, not into the batch, so they must be left alone.
_BOOKKEEPING_INDICES = frozenset({"file_index", "track_index"})


class JetGraph(Data):
    """A jet graph: ``Data`` whose ``file_index`` and ``track_index`` survive batching unchanged."""

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key in _BOOKKEEPING_INDICES:
            return 0
        return super().__inc__(key, value, *args, **kwargs)


def fully_connected_edge_index(n_nodes: int) -> Tensor:
    """All ``n(n-1)`` directed edges without self loops, source-major: (0,1), (0,2), ..., (1,0), (1,2), ...

    This is the edge order of the public HIN-LRP jets, so edge relevances line up with theirs.
    """
    if n_nodes < 0:
        raise InputError(f"a graph needs a non-negative number of nodes, got {n_nodes}")
    if n_nodes < 2:
        return torch.empty((2, 0), dtype=torch.long)
    source = torch.arange(n_nodes).repeat_interleave(n_nodes - 1)
    # For each source, count 0..n-2 through the other nodes, stepping over the source itself.
    step = torch.arange(n_nodes - 1).repeat(n_nodes)
    target = step + (step >= source).long()
    return torch.stack([source, target])


def jet_graph(x: Tensor | np.ndarray, y: int, **extra: Any) -> JetGraph:
    """One jet as a graph: ``x`` [n, F] float32 track features, fully connected, ``y`` [1] class index.

    ``x`` is copied, so the graph never keeps a larger array it was sliced from alive.
    ``extra`` holds per-jet attributes (spectators, bookkeeping) stored on the graph as given.
    """
    features = torch.as_tensor(x, dtype=torch.float32).clone()
    if features.dim() != 2:
        raise InputError(f"track features must be a [tracks, features] matrix, got shape {tuple(features.shape)}")
    return JetGraph(
        x=features,
        edge_index=fully_connected_edge_index(features.shape[0]),
        y=torch.tensor([int(y)], dtype=torch.long),
        **extra,
    )


def knn_edge_index(pos: Tensor, batch: Tensor | None = None, k: int = 8) -> Tensor:
    """Edges from each node's ``k`` nearest neighbours in ``pos`` (same graph only) to the node, as ParticleNet.

    Plain PyTorch (a dense distance matrix), so it runs without torch-cluster.
    Nodes of graphs with at most ``k`` nodes get all other nodes of their graph.
    """
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    batch = torch.zeros(len(pos), dtype=torch.long, device=pos.device) if batch is None else batch
    k = min(k, len(pos) - 1)
    if k < 1:
        return torch.empty((2, 0), dtype=torch.long, device=pos.device)
    distance = torch.cdist(pos, pos)
    distance[batch[:, None] != batch[None, :]] = float("inf")
    distance.fill_diagonal_(float("inf"))
    source = torch.topk(distance, k, dim=1, largest=False, sorted=True).indices.reshape(-1)
    target = torch.arange(len(pos), device=pos.device).repeat_interleave(k)
    keep = torch.isfinite(distance[target, source])
    return torch.stack([source[keep], target[keep]])


def fully_connected_batch_edges(tracks_per_jet: Tensor, ptr: Tensor) -> Tensor:
    """The edges of :func:`fully_connected_edge_index` for every jet of a batch at once, on the batch's device.

    ``ptr`` is PyG's ``Batch.ptr`` (first node of each jet, then the total). Jet ``g`` with
    ``n`` tracks gets ``n(n-1)`` edges, source-major, offset by ``ptr[g]``: the edges
    ``Batch.from_data_list`` would give, without a ``Data`` object per jet.
    """
    per_jet = tracks_per_jet * (tracks_per_jet - 1)
    jet = torch.repeat_interleave(torch.arange(len(tracks_per_jet), device=ptr.device), per_jet)
    first_edge = torch.cumsum(per_jet, 0) - per_jet
    local = torch.arange(int(per_jet.sum()), device=ptr.device) - first_edge[jet]
    others = (tracks_per_jet - 1)[jet]
    source = torch.div(local, others, rounding_mode="floor")
    step = local - source * others
    target = step + (step >= source).long()
    return torch.stack([source, target]) + ptr[jet]


def graph_fields(data: Batch) -> list[str]:
    """The fields of a batch beyond ``x``, ``edge_index``, ``batch`` and ``ptr`` that hold one row per node or per
    edge (``edge_attr``, ``edge_weight``, ``pos``): what goes with the nodes and edges when a batch is cut or copied."""
    return [name for name in data.keys() if name not in ("x", "edge_index", "batch", "ptr")
            and isinstance(data[name], Tensor) and (data.is_node_attr(name) or data.is_edge_attr(name))]


def jet_batch(x: Tensor | np.ndarray, tracks_per_jet: Tensor | np.ndarray, device: torch.device | str = "cpu",
              connected: bool = True, **per_jet: Tensor | np.ndarray) -> Batch:
    """A PyG ``Batch`` of fully connected jets straight from flat track features ``x [tracks, F]`` (without edges
    unless ``connected``: for a model that builds its own pairs).

    Built on ``device`` from the arrays, so large batches need no ``Data`` object per
    jet; ``per_jet`` arrays (labels, spectators) are attached as they are.
    """
    device = torch.device(device)
    counts = torch.as_tensor(tracks_per_jet, dtype=torch.long).to(device)
    ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    features = torch.as_tensor(x, dtype=torch.float32).to(device)
    if features.shape[0] != int(ptr[-1]):
        raise InputError(f"{features.shape[0]} tracks do not add up to the {int(ptr[-1])} the jets count")
    batch = Batch(
        x=features,
        edge_index=fully_connected_batch_edges(counts, ptr) if connected else counts.new_zeros((2, 0)),
        batch=torch.repeat_interleave(torch.arange(len(counts), device=device), counts),
        ptr=ptr,
        **{name: torch.as_tensor(values).to(device) for name, values in per_jet.items()},
    )
    batch._num_graphs = len(counts)
    return batch
