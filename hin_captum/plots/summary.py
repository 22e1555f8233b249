"""Figures of a run's global summary (:class:`~hin_captum.output.summary.RelevanceSummary`): they need only the
histograms, so ``summary.root`` can be plotted again without explaining."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.colors import LogNorm

from ..output.summary import RelevanceSummary
from .style import DIVERGING, centred_norm, save_figure

SEQUENTIAL = "viridis"


def _title(summary: RelevanceSummary, what: str) -> str:
    target = "each jet's predicted class" if summary.target == "predicted" else f"the {summary.target} logit"
    return f"{what}\n{summary.method}: relevance for {target}, {summary.jets} jets"


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.full_like(numerator, np.nan, dtype=float), where=denominator > 0)


def feature_ranking(summary: RelevanceSummary) -> plt.Figure:
    """Per feature (rows, by decreasing mean |R|) and per true or predicted class: mean signed R, mean |R| and how
    often the feature is among a jet's top features, as three heat maps."""
    values = {kind: summary.histograms[f"feature_{kind}"].values() for kind in ("signed", "abs", "top")}
    jets = summary.histograms["jets"].values()  # [true, predicted]
    classes = summary.classes
    columns = [f"true {name}" for name in classes] + [f"predicted {name}" for name in classes]

    def by_column(sums: np.ndarray) -> np.ndarray:  # [feature, true, predicted] -> [feature, column]
        return np.concatenate([_ratio(sums.sum(2), jets.sum(1)[None]), _ratio(sums.sum(1), jets.sum(0)[None])], 1)

    order = np.argsort(-_ratio(values["abs"].sum((1, 2)), np.array(jets.sum())), kind="stable")
    names = [summary.features[k] for k in order]
    top = summary.config["top"]
    panels = [("signed", "mean signed R (sum over tracks)", DIVERGING), ("abs", "mean |R| (sum over tracks)",
                                                                          SEQUENTIAL),
              ("top", f"fraction of jets with the feature in their top {top}", SEQUENTIAL)]
    figure, grid = plt.subplots(1, 3, figsize=(15, 0.2 * len(names) + 2.5), sharey=True)
    for axes, (kind, label, colormap) in zip(grid, panels):
        table = by_column(values[kind])[order]
        norm = centred_norm(table) if colormap == DIVERGING else None
        image = axes.imshow(table, aspect="auto", cmap=colormap, norm=norm, interpolation="nearest")
        figure.colorbar(image, ax=axes, shrink=0.6, label=label)
        axes.set_xticks(range(len(columns)), columns, rotation=35, ha="right", fontsize=8)
        axes.set_title(label, fontsize=9)
    grid[0].set_yticks(range(len(names)), names, fontsize=7)
    grid[0].set_ylabel("input feature (by decreasing mean |R|)")
    figure.suptitle(_title(summary, "Feature ranking over the sample"), fontsize=10)
    figure.tight_layout()
    return figure


def relevance_by_pt_rank(summary: RelevanceSummary) -> plt.Figure:
    """Mean relevance and mean |R| of a track against its pT rank in the jet, per true class."""
    axis = summary.histograms["rank_tracks"].axes[0]
    return _mean_per_class(summary, "rank", "tracks", axis.edges[:-1], "track rank by pT in its jet (0: hardest)",
                           ("mean track relevance (sum of R over features)", "mean |track relevance|"),
                           "Relevance by track pT rank")


def edge_relevance_by_delta_r(summary: RelevanceSummary) -> plt.Figure:
    """Mean relevance through a track pair against the pair's angular distance ΔR, per true class."""
    edges = summary.histograms["edge_pairs"].axes[0].edges
    return _mean_per_class(summary, "edge", "pairs", (edges[1:] + edges[:-1]) / 2, "track-pair ΔR (η_rel, φ_rel)",
                           ("mean edge relevance", "mean |edge relevance|"),
                           "Track-pair (edge) relevance by angular distance")


def _mean_per_class(summary: RelevanceSummary, prefix: str, counts: str, x: np.ndarray, x_label: str,
                    y_labels: tuple[str, str], title: str) -> plt.Figure:
    """Two panels, signed and absolute: ``<prefix>_signed`` and ``<prefix>_abs`` over ``<prefix>_<counts>``
    against ``x``, one curve per true class."""
    h = summary.histograms
    n = h[f"{prefix}_{counts}"].values()
    figure, grid = plt.subplots(1, 2, figsize=(11, 4.2))
    for axes, kind, label in zip(grid, ("signed", "abs"), y_labels):
        mean = _ratio(h[f"{prefix}_{kind}"].values(), n)
        for index, name in enumerate(summary.classes):
            axes.plot(x, mean[:, index], marker="o", markersize=3, label=f"true {name}")
        axes.set_xlabel(x_label)
        axes.set_ylabel(label)
        axes.axhline(0.0, color="0.6", linewidth=0.6)
        axes.legend(fontsize=8)
    figure.suptitle(_title(summary, title), fontsize=10)
    figure.tight_layout()
    return figure


def relevance_by_spectator(summary: RelevanceSummary, spectator: str, n_features: int = 12) -> plt.Figure:
    """Mean |R| of the ``n_features`` most relevant features in bins of the jet's mass or pT, one panel per class."""
    h = summary.histograms
    sums, jets = h[f"{spectator}_abs"].values(), h[f"{spectator}_jets"].values()  # [bin, feature, true], [bin, true]
    edges = h[f"{spectator}_jets"].axes[0].edges
    order = np.argsort(-sums.sum((0, 2)), kind="stable")[:n_features]
    label = h[f"{spectator}_jets"].axes[0].label or spectator
    figure, grid = plt.subplots(1, len(summary.classes), figsize=(6.2 * len(summary.classes), 0.3 * n_features + 2.8),
                                sharey=True, squeeze=False)
    for index, (axes, name) in enumerate(zip(grid[0], summary.classes)):
        mean = _ratio(sums[:, order, index], jets[:, None, index]).T
        image = axes.pcolormesh(edges, np.arange(len(order) + 1), mean, cmap=SEQUENTIAL)
        figure.colorbar(image, ax=axes, label="mean |R| per jet (sum over tracks)")
        axes.set_xlabel(label)
        axes.set_title(f"true {name}", fontsize=9)
    grid[0, 0].set_yticks(np.arange(len(order)) + 0.5, [summary.features[k] for k in order], fontsize=7)
    grid[0, 0].set_ylabel("input feature (most relevant first)")
    grid[0, 0].invert_yaxis()
    figure.suptitle(_title(summary, f"Does the tagger reason differently with the jet's {label}?"), fontsize=10)
    figure.tight_layout()
    return figure


def relevance_vs_value(summary: RelevanceSummary, n_features: int = 4) -> plt.Figure:
    """Relevance against input value for the ``n_features`` of highest mean |R|: a 2D histogram for continuous
    features, boxes (quartiles, 5-95% whiskers) per value for discrete ones."""
    order = np.argsort(-summary.histograms["feature_abs"].values().sum((1, 2)), kind="stable")[:n_features]
    columns = min(2, len(order))
    rows = -(-len(order) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(5.6 * columns, 4.2 * rows), squeeze=False)
    discrete = summary.config["discrete"]
    for axes, feature in zip(grid.flat, order):
        name = summary.features[feature]
        histogram = summary.histograms[f"value_{feature}"]
        counts = histogram.values()  # [value, relevance]
        value_edges, relevance_edges = (axis.edges for axis in histogram.axes)
        if name in discrete:
            _boxes(axes, value_edges, relevance_edges, counts)
        else:
            positive = counts[counts > 0]
            norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
            image = axes.pcolormesh(value_edges, relevance_edges, counts.T, cmap=SEQUENTIAL, norm=norm)
            figure.colorbar(image, ax=axes, label="tracks")
        axes.set_yscale("symlog", linthresh=float(np.abs(relevance_edges)[np.abs(relevance_edges) > 0].min()) * 10)
        axes.axhline(0.0, color="0.5", linewidth=0.6)
        axes.set_xlabel(f"{name} (input value)")
        axes.set_ylabel(f"relevance R of {name}")
    for axes in grid.flat[len(order):]:
        axes.set_visible(False)
    figure.suptitle(_title(summary, f"Relevance vs value: top {len(order)} features by mean |R|"), fontsize=10)
    figure.tight_layout()
    return figure


def _boxes(axes: plt.Axes, value_edges: np.ndarray, relevance_edges: np.ndarray, counts: np.ndarray) -> None:
    """A box per discrete value from the histogram of its relevance: quartiles, median, 5% and 95%."""
    centres = (relevance_edges[1:] + relevance_edges[:-1]) / 2
    values, stats = [], []
    for column, low in enumerate(value_edges[:-1]):
        weights = counts[column]
        if weights.sum() <= 0:
            continue
        cumulative = np.cumsum(weights) / weights.sum()
        q05, q25, q50, q75, q95 = (centres[min(np.searchsorted(cumulative, q), len(centres) - 1)]
                                   for q in (0.05, 0.25, 0.5, 0.75, 0.95))
        values.append(low)
        stats.append({"med": q50, "q1": q25, "q3": q75, "whislo": q05, "whishi": q95, "label": f"{low:g}",
                      "fliers": []})
    if stats:
        axes.bxp(stats, positions=values, widths=0.6, showfliers=False)


def plot_summary(summary: RelevanceSummary, folder: str | Path, formats: Sequence[str] = ("png",),
                 top_features: int = 4) -> list[Path]:
    """Every figure of the summary into ``folder``."""
    folder = Path(folder)
    figures = {
        "feature_ranking": feature_ranking(summary),
        "relevance_by_pt_rank": relevance_by_pt_rank(summary),
        "edge_relevance_by_delta_r": edge_relevance_by_delta_r(summary),
        "relevance_by_mass": relevance_by_spectator(summary, "mass"),
        "relevance_by_pt": relevance_by_spectator(summary, "pt"),
        "relevance_vs_value": relevance_vs_value(summary, top_features),
    }
    written: list[Path] = []
    for name, figure in figures.items():
        written += save_figure(figure, folder / name, formats)
    return written
