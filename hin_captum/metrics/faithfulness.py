"""Deletion and insertion curves at the reference point, their AOPC, and PyG's fidelity at a fixed sparsity.

Both curves rank, per graph, the node features (or whole tracks) by signed
relevance, most relevant first. Deletion sets the chosen ones to their reference
value ``x0`` (the same point the methods measure relevance from, so a removed
feature takes the value an explanation calls neutral); insertion starts from the
reference jet and puts the chosen ones back. All fractions run as stacked copies
of the batch in one pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.explain import Explainer
from torch_geometric.explain import Explanation as PyGExplanation
from torch_geometric.explain.algorithm import DummyExplainer
from torch_geometric.explain.metric import fidelity

from ..util import InputError
from ..lrp.reference import Reference
from ..models.tagger import jet_reference
from ..methods.explanation import Explanation
from ..models.stacked import StackedCopies

UNITS = ("feature", "track")
MODES = ("deletion", "insertion")


def _rank_within_graph(score: Tensor, graph: Tensor) -> Tensor:
    """Rank (0 = highest score) of every element among the elements of its graph; ties keep input order."""
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(graph[order], stable=True)]
    counts = torch.bincount(graph)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device) - starts[graph[order]]
    return rank


def top_fraction_mask(explanation: Explanation, fraction: float, unit: str = "feature") -> Tensor:
    """``[N, F]`` boolean: per graph, the ``fraction`` most relevant features (or tracks), rounded to nearest."""
    if unit not in UNITS:
        raise InputError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    node = explanation.node
    if unit == "feature":
        score, graph = node.reshape(-1), explanation.batch.repeat_interleave(node.shape[1])
    else:
        score, graph = node.sum(1), explanation.batch
    rank = _rank_within_graph(score, graph)
    size = torch.bincount(graph, minlength=explanation.num_graphs)
    keep = rank < torch.round(fraction * size[graph].to(score.dtype)).long()
    return keep.reshape(node.shape) if unit == "feature" else keep[:, None].expand_as(node)


@dataclass
class FaithfulnessCurve:
    """Target logit and probability per graph ``[G, K]`` at each fraction ``[K]`` removed or inserted."""

    mode: str
    unit: str
    fractions: np.ndarray
    logit: np.ndarray
    probability: np.ndarray

    def area(self, of: str = "probability") -> np.ndarray:
        """Area under the curve per graph (trapezoids over the fractions); low is good for deletion."""
        values = getattr(self, of)
        widths = np.diff(self.fractions)
        return ((values[:, 1:] + values[:, :-1]) / 2 * widths).sum(1)

    def aopc(self) -> np.ndarray:
        """Area over the perturbation curve per graph: the mean change of the target logit, higher is better.

        ``AOPC = 1/(f_K - f_0) * integral over the fraction f of s * (logit(f) - logit(f_0))`` with
        ``s = -1`` for deletion (the mean drop as the most relevant features are removed,
        Samek et al. 2017) and ``s = +1`` for insertion (the mean rise as they are put back
        into the reference jet), by trapezoids over the fractions.
        """
        change = self.logit - self.logit[:, :1]
        sign = -1.0 if self.mode == "deletion" else 1.0
        widths = np.diff(self.fractions)
        area = ((change[:, 1:] + change[:, :-1]) / 2 * widths).sum(1)
        return sign * area / (self.fractions[-1] - self.fractions[0])


def faithfulness_curve(
    model: nn.Module, data: Batch, explanation: Explanation, fractions: np.ndarray,
    mode: str = "deletion", unit: str = "feature", reference: Reference = "auto",
) -> FaithfulnessCurve:
    """Set the most relevant inputs to the reference first (deletion), or put them into the reference jet
    first (insertion), and follow the target logit and probability."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    fractions = np.asarray(fractions, dtype=float)
    if len(fractions) < 2 or fractions[0] != 0.0 or np.any(np.diff(fractions) <= 0):
        raise InputError(f"fractions must rise from 0, got {fractions.tolist()}")
    x0 = jet_reference(reference, model, data).expand_as(data.x)
    masks = torch.stack([top_fraction_mask(explanation, float(f), unit) for f in fractions])
    keep = ~masks if mode == "deletion" else masks
    x = torch.where(keep, data.x[None], x0[None]).reshape(-1, data.x.shape[1])
    with torch.no_grad():
        logits = StackedCopies(model, data)(x)
    logits = logits.reshape(len(fractions), data.num_graphs, -1)
    target = explanation.target[None, :, None].expand(len(fractions), -1, 1)
    logit = logits.gather(2, target)[..., 0].T
    probability = logits.softmax(2).gather(2, target)[..., 0].T
    return FaithfulnessCurve(mode, unit, fractions, logit.cpu().numpy(), probability.cpu().numpy())


def fidelity_at_sparsity(model: nn.Module, data: Batch, explanation: Explanation, sparsity: float) -> tuple[float, float]:
    """PyG's fidelity+ and fidelity- (``model`` explanations) for the top ``1 - sparsity`` node features.

    fidelity+: how often the prediction changes when the explanation is removed
    (high is good); fidelity-: how often it changes when only the explanation is
    kept (low is good). PyG masks by multiplying, so removed features become zero,
    not the reference.
    """
    explainer = Explainer(
        model, algorithm=DummyExplainer(), explanation_type="model", node_mask_type="attributes",
        model_config=dict(mode="multiclass_classification", task_level="graph", return_type="raw"),
    )
    mask = top_fraction_mask(explanation, 1.0 - sparsity).to(data.x.dtype)
    pyg = PyGExplanation(x=data.x, edge_index=data.edge_index, node_mask=mask, batch=data.batch,
                         target=explanation.prediction.argmax(1))
    pyg._model_args = ["batch"]
    with torch.no_grad():
        positive, negative = fidelity(explainer, pyg)
    return float(positive), float(negative)

