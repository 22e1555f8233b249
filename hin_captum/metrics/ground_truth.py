"""Checks against what is known: the feature that decides the sanity-check label, and conservation."""
from __future__ import annotations

import numpy as np
from torch import Tensor

from ..methods.explanation import Explanation


def feature_share(node: Tensor, feature: int) -> float:
    """Fraction of all ``|relevance|`` in ``node [N, F]`` (any set of tracks) that lies on one feature."""
    magnitude = node.abs()
    total = float(magnitude.sum())
    return float(magnitude[:, feature].sum()) / total if total > 0 else float("nan")


def top_feature_rate(importance: np.ndarray, feature: int) -> float:
    """Fraction of graphs whose most important feature (``importance [G, F]``, see ``feature_importance``) is ``feature``."""
    return float(np.mean(importance.argmax(1) == feature))


def conservation_error(explanation: Explanation) -> np.ndarray:
    """Per graph ``|sum R - output| / |output|``: how far the input relevance is from the explained logit."""
    total = explanation.node_relevance_per_graph().double()
    output = explanation.output.double()
    return ((total - output).abs() / output.abs().clamp_min(1e-12)).cpu().numpy()
