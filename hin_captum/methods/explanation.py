"""The result every attribution method returns."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter

from ..lrp.attribution import check_rows
from ..lrp.engine import ConservationReport
from ..util import InputError


@dataclass
class Explanation:
    """Relevance of one batch of graphs for one target logit per graph."""

    method: str
    node: Tensor
    """``[N, F]`` relevance of the raw input features."""
    output: Tensor
    """``[G]`` the explained logit of each graph."""
    prediction: Tensor
    """``[G, C]`` softmax of the model output."""
    target: Tensor
    """``[G]`` the explained class of each graph."""
    batch: Tensor
    """``[N]`` graph of each node."""
    edge_index: Tensor
    edge: Tensor | None = None
    """``[E, K]`` relevance through each edge, for methods that give it: LRP's ``[E, 2F]`` (source
    half, destination half), a mask ``[E, 1]`` for GNNExplainer."""
    edge_score: Tensor | None = None
    """``[E]`` the HIN-LRP paper's S_edge: ``|edge_e|`` over the sum of ``|edge|`` in its graph."""
    conservation: ConservationReport | None = None
    reference: Tensor | None = None
    """The reference point the relevance is measured from (``[F]`` or ``[N, F]``), for methods that have one."""
    absorbed: Tensor | None = None
    """``[G]`` for LRP: the part of each explained output that biases and epsilon kept (output minus summed relevance)."""
    edge_names: tuple[str, ...] | None = None
    """Names of the columns of :attr:`edge` when they are quantities of their own (ParT's pair features)."""

    @property
    def num_graphs(self) -> int:
        return self.output.shape[0]

    def node_relevance_per_graph(self) -> Tensor:
        """``[G]`` sum of input relevance of each graph."""
        return scatter(self.node.sum(1), self.batch, dim=0, dim_size=self.num_graphs, reduce="sum")


def explanation_of(
    method: str,
    data: Batch,
    target: Tensor,
    logits: Tensor,
    node: Tensor,
    edge: Tensor | None = None,
    conservation: ConservationReport | None = None,
    reference: Tensor | None = None,
    edge_index: Tensor | None = None,
) -> Explanation:
    """An :class:`Explanation` from a method's relevance and the model's logits ``[G, C]`` on ``data``; ``edge``
    belongs to the edges of ``data`` or, for a model that builds its own pairs, to ``edge_index``."""
    edge_index = data.edge_index if edge_index is None else edge_index
    check_rows(logits, data.num_graphs)
    logits = logits.detach()
    return Explanation(
        method=method,
        node=node.detach(),
        output=logits.gather(1, target[:, None]).squeeze(1),
        prediction=logits.softmax(dim=1),
        target=target,
        batch=data.batch,
        edge_index=edge_index,
        edge=None if edge is None else edge.detach(),
        edge_score=None if edge is None else edge_scores(edge.detach(), edge_index, data.batch, data.num_graphs),
        conservation=conservation,
        reference=reference,
    )


def edge_scores(edge: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """Per graph, each edge's relevance norm over the sum of all its graph's edge norms (0 for all-zero graphs)."""
    norms = edge.flatten(1).norm(dim=1)
    graph = batch[edge_index[0]]
    totals = scatter(norms, graph, dim=0, dim_size=num_graphs, reduce="sum")[graph]
    return torch.where(totals > 0, norms / torch.where(totals > 0, totals, 1.0), torch.zeros_like(norms))


def as_batch(data: Data | Batch) -> Batch:
    """A ``Batch`` view of one graph or many, so every method sees ``batch`` and ``num_graphs``."""
    if isinstance(data, Batch):
        return data
    if isinstance(data, Data):
        return Batch.from_data_list([data])
    raise InputError(f"hin_captum.attribute explains graphs (a torch_geometric Data or Batch), not a "
                     f"{type(data).__name__}: for plain tensors use hin_captum.LRP(model).attribute(x, target=...)")
