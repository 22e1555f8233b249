"""Figures of the method comparison: deletion curves, runtime, and mean |R| per feature per method."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..comparison import MethodResult
from .style import feature_labels, save_figure


def deletion_curves(results: Sequence[MethodResult], fractions: Sequence[float], title: str, path: Path) -> Path:
    """Mean target probability as the most relevant node features are zeroed, one line per method."""
    frame = pd.DataFrame(
        [(r.method, f, p) for r in results for f, p in zip(fractions, r.deletion_curve)],
        columns=["method", "fraction of node features removed", "mean target probability"],
    )
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    sns.lineplot(frame, x="fraction of node features removed", y="mean target probability", hue="method",
                 marker="o", ax=axes)
    axes.set_title(f"Deletion curves: {title} (lower is more faithful)")
    axes.legend(title="method", fontsize=8)
    return save_figure(figure, path)[0]


def runtime_bars(results: Sequence[MethodResult], title: str, path: Path) -> Path:
    """Milliseconds per jet of each method, on a log scale."""
    frame = pd.DataFrame({"method": [r.method for r in results],
                          "milliseconds per jet": [r.row["ms per jet"] for r in results]})
    figure, axes = plt.subplots(figsize=(6.5, 4))
    sns.barplot(frame, x="milliseconds per jet", y="method", hue="method", legend=False, ax=axes)
    axes.set_xscale("log")
    axes.set_title(f"Runtime: {title}")
    for container in axes.containers:
        axes.bar_label(container, fmt="%.3g", fontsize=8, padding=2)
    return save_figure(figure, path)[0]


def feature_relevance(results: Sequence[MethodResult], feature_names: Sequence[str], title: str,
                      path: Path) -> Path:
    """Heat map: share of each method's mean |R| per input feature (rows sum to 1)."""
    shares = np.stack([r.feature_relevance for r in results])
    figure, axes = plt.subplots(figsize=(14, 0.45 * len(results) + 2.5))
    sns.heatmap(pd.DataFrame(shares, index=[r.method for r in results], columns=feature_labels(feature_names)),
                cmap="viridis", vmin=0, ax=axes, cbar_kws={"label": "share of mean |R|"})
    axes.set_xlabel("input feature")
    axes.set_ylabel("method")
    axes.set_title(f"Mean |relevance| per feature: {title}")
    return save_figure(figure, path)[0]
