"""Figures of the benchmark: deletion and insertion curves, runtime, mean |R| per feature, and the composite study."""
from __future__ import annotations

from itertools import cycle
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .comparison import MethodResult
from ..plots.style import feature_labels, save_figure

LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (3, 3)))
MARKERS = ("o", "s", "^", "v", "D", "x", "+", "P", "*")
CURVE_TEXT = {
    "deletion": ("removed (set to the reference)", "lower is more faithful"),
    "insertion": ("inserted into the reference jet", "higher is more faithful"),
}


def benchmark_figures(part: str, results: Sequence[MethodResult], fractions: Sequence[float],
                      names: Sequence[str], title: str, stem: Path) -> list[Path]:
    """The figures of one table: curves, runtime and features for the methods; AOPC and conservation for composites."""
    if part == "methods":
        return [
            perturbation_curves(results, fractions, "deletion", title, stem.with_name(f"{stem.name}_deletion.png")),
            perturbation_curves(results, fractions, "insertion", title, stem.with_name(f"{stem.name}_insertion.png")),
            runtime_bars(results, title, stem.with_name(f"{stem.name}_runtime.png")),
            feature_relevance(results, names, title, stem.with_name(f"{stem.name}_features.png")),
        ]
    return [composite_scores(results, title, stem.with_name(f"{stem.name}.png"))]


def perturbation_curves(results: Sequence[MethodResult], fractions: Sequence[float], mode: str, title: str,
                        path: Path) -> Path:
    """Mean target logit as the most relevant node features are removed or inserted, one line per method.

    Curves that coincide (LRP with a tiny epsilon is input x gradient) stay visible:
    every method has its own dash pattern and marker, and earlier lines are drawn wider
    underneath later ones.
    """
    figure, axes = plt.subplots(figsize=(7, 4.6))
    styles = zip(cycle(LINE_STYLES), cycle(MARKERS), sns.color_palette("tab10", len(results)))
    for order, (result, (style, marker, colour)) in enumerate(zip(results, styles)):
        axes.plot(fractions, result.curves[mode], linestyle=style, marker=marker, color=colour, markersize=5,
                  linewidth=3.2 - 2.4 * order / max(len(results) - 1, 1), label=result.method, zorder=order,
                  markerfacecolor="none" if order % 2 else colour)
    removed, better = CURVE_TEXT[mode]
    axes.set_xscale("symlog", linthresh=0.05, linscale=0.6)  # the first few percent decide the AOPC
    axes.set_xlabel(f"fraction of node features {removed} (linear below 0.05)")
    axes.set_ylabel("mean target logit")
    axes.set_title(f"{mode.capitalize()} at the reference: {title}\n({better})", fontsize=9)
    axes.legend(title="method", fontsize=8)
    return save_figure(figure, path)[0]


def runtime_bars(results: Sequence[MethodResult], title: str, path: Path) -> Path:
    """Milliseconds per jet of each method, on a log scale."""
    frame = pd.DataFrame({"method": [r.method for r in results],
                          "milliseconds per jet": [r.row["ms per jet"] for r in results]})
    figure, axes = plt.subplots(figsize=(6.5, 4))
    sns.barplot(frame, x="milliseconds per jet", y="method", hue="method", legend=False, ax=axes)
    axes.set_xscale("log")
    axes.set_title(f"Runtime: {title}", fontsize=9)
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
    axes.set_title(f"Mean |relevance| per feature: {title}", fontsize=9)
    return save_figure(figure, path)[0]


def composite_scores(results: Sequence[MethodResult], title: str, path: Path) -> Path:
    """Deletion AOPC and the correlation of sum R with the logit of every variant, IG's values as lines."""
    labels = [r.method for r in results]
    columns = [("deletion AOPC (features)", "deletion AOPC at the reference (higher is better)"),
               ("sum R vs logit (corr)", "correlation of sum R with the logit")]
    figure, axes = plt.subplots(1, 2, figsize=(12, 0.28 * len(results) + 1.8), sharey=True)
    ig = next((r.row for r in results if r.method == "ig"), {})
    for axis, (column, label) in zip(axes, columns):
        values = [r.row.get(column, np.nan) for r in results]
        axis.barh(labels, values, color=["tab:orange" if name in ("ig", "inputxgradient") else "tab:blue"
                                         for name in labels])
        if column in ig:
            axis.axvline(ig[column], color="tab:orange", linestyle="--", label="ig")
            axis.legend(fontsize=8)
        axis.set_xlabel(label)
    axes[0].set_ylabel("variant (reference)")
    axes[0].invert_yaxis()
    figure.suptitle(f"Composite study: {title}", fontsize=9)
    return save_figure(figure, path)[0]
