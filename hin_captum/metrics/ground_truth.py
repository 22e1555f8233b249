"""Checks against what is known: the features planted in the sanity-check set, conservation and stability."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from ..methods.explanation import Explanation


def feature_share(node: Tensor, features: int | Sequence[int]) -> float:
    """Fraction of all ``|relevance|`` in ``node [N, F]`` (any set of tracks) that lies on the given feature(s)."""
    magnitude = node.abs()
    total = float(magnitude.sum())
    columns = [features] if isinstance(features, int) else list(features)
    return float(magnitude[:, columns].sum()) / total if total > 0 else float("nan")


def top_feature_rate(importance: np.ndarray, feature: int) -> float:
    """Fraction of graphs whose most important feature (``importance [G, F]``, see ``feature_importance``) is ``feature``."""
    return float(np.mean(importance.argmax(1) == feature))


def conservation_error(explanation: Explanation, reference_output: Tensor | None = None) -> np.ndarray:
    """Per graph ``|sum R - y| / |y|`` with ``y`` the explained logit, or its change from ``reference_output``.

    LRP passes the logit down and biases keep part of it; Integrated Gradients sums to
    ``f(x) - f(x0)``, the change from the reference jet's own logit ``f(x0)``.
    """
    total = explanation.node_relevance_per_graph().double()
    expected = explanation.output.double()
    if reference_output is not None:
        expected = expected - reference_output.double()
    return ((total - expected).abs() / expected.abs().clamp_min(1e-12)).cpu().numpy()


def stability(explanation: Explanation) -> float:
    """The largest ``|sum R| / (|logit| + 1)`` over the graphs: how far relevance can run away from the output.

    Infinite when any relevance is not finite.
    """
    if not bool(explanation.node.isfinite().all()):
        return float("inf")
    total = explanation.node_relevance_per_graph().double().abs()
    return float((total / (explanation.output.double().abs() + 1)).max())
