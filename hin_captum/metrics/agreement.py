"""Rank agreement between explanations: per-graph feature rankings compared with Spearman's rho."""
from __future__ import annotations

import numpy as np
from torch_geometric.utils import scatter

from ..methods.explanation import Explanation


def feature_importance(explanation: Explanation) -> np.ndarray:
    """``[G, F]``: summed ``|R|`` of each feature over the tracks of each graph."""
    importance = scatter(explanation.node.abs(), explanation.batch, dim=0, dim_size=explanation.num_graphs,
                         reduce="sum")
    return importance.double().cpu().numpy()


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing the mean of their ranks (as Spearman's rho needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return ((upper - counts + 1 + upper) / 2)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two score vectors; 0 if either is constant (no ranking to compare)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(average_ranks(a), average_ranks(b))[0, 1])


def spearman_per_graph(first: Explanation, second: Explanation) -> np.ndarray:
    """``[G]`` Spearman's rho between the two explanations' feature rankings of each graph."""
    a, b = feature_importance(first), feature_importance(second)
    return np.array([spearman(x, y) for x, y in zip(a, b)])
