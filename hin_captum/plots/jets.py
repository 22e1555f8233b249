"""Figures of single jets: the heatmap of every feature of every track, and the 3D view with the track pairs.

The figures over the whole sample come from its summary (:mod:`hin_captum.plots.summary`).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import pyplot as plt
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from ..output.table import RelevanceTable
from ..pipeline.settings import PlotSettings
from .style import DIVERGING, centred_norm, save_figure

SIGNAL = "Hbb"
"""The class whose most confident jets get per-jet plots (the HIN-LRP paper's selection)."""
EDGE_COLORMAP = "Oranges"
NODE_SIZE = (15.0, 320.0)
"""Marker area (points^2) of the track with no relevance and of the track with the largest |R| of its jet."""


def most_confident(table: RelevanceTable, n: int, class_name: str = SIGNAL) -> list[int]:
    """The ``n`` jets with the highest predicted probability of ``class_name``, most confident first."""
    probability = table.prediction[:, table.classes.index(class_name)]
    return [int(jet) for jet in np.argsort(-probability, kind="stable")[:n]]


def signal_of(classes: list[str]) -> str:
    """The signal class: Hbb, or a weaver model's last class (``H_bb``)."""
    return SIGNAL if SIGNAL in classes else classes[-1]


def _jet_title(table: RelevanceTable, jet: int) -> str:
    spectators = ", ".join(f"{name} {values[jet]:.0f}" for name, values in table.spectators.items())
    signal = signal_of(table.classes)
    probability = table.prediction[jet, table.classes.index(signal)]
    return (f"{table.method}: relevance for the {table.classes[table.target[jet]]} logit; file {table.file_index[jet]} "
            f"entry {table.entry[jet]}\ntrue {table.classes[table.label[jet]]}, p({signal}) {probability:.3f}, "
            f"{spectators}")


def heatmap_width(tracks: int) -> float:
    """Width (inches) of a features x tracks heatmap of ``tracks`` columns."""
    return max(6.0, 0.22 * tracks + 3.0)


def track_heatmap(axes: plt.Axes, values: np.ndarray, features: list[str], pt: np.ndarray, pt_label: str,
                  colour_label: str) -> None:
    """``values [tracks, F]`` as features (rows) by tracks (columns, by decreasing ``pt``), centred at 0."""
    order = np.argsort(-pt, kind="stable")
    shown = values[order].T
    norm = centred_norm(shown)
    frame = pd.DataFrame(shown, index=features, columns=[f"{value:.3g}" for value in pt[order]])
    sns.heatmap(frame, cmap=DIVERGING, vmin=norm.vmin, vmax=norm.vmax, ax=axes, xticklabels=True, yticklabels=True,
                cbar_kws={"label": colour_label})
    axes.tick_params(labelsize=7)
    axes.set_xlabel(f"tracks by decreasing {pt_label} (tick: its value)")
    axes.set_ylabel("input feature")


def relevance_heatmap(table: RelevanceTable, jet: int, pt_feature: str) -> plt.Figure:
    """Relevance of every feature (rows) of every track (columns, by decreasing ``pt_feature``), centred at 0."""
    rows = table.track_slice(jet)
    pt = table.x[rows, table.features.index(pt_feature)]
    figure, axes = plt.subplots(figsize=(heatmap_width(len(pt)), 10.0))
    track_heatmap(axes, table.node[rows], table.features, pt, pt_feature, f"relevance R ({table.method})")
    axes.set_title(_jet_title(table, jet), fontsize=9)
    return figure


def jet_3d(table: RelevanceTable, jet: int, coordinates: Mapping[str, str], edge_significance: float,
           figure: plt.Figure | None = None, position: Any = 111) -> plt.Figure:
    """Tracks at (eta, phi, log10 pt): marker size grows with the norm of the track's R, colour is its summed R.

    A track pair's score is the S_edge of both its directed edges; pairs scoring more
    than ``edge_significance`` standard deviations above the mean pair score of the jet
    are drawn in colour, the others faint. Drawn on a figure of its own, or at ``position``
    (a subplot position or grid cell) of ``figure``.
    """
    rows = table.track_slice(jet)
    eta, phi, pt = (table.x[rows, table.features.index(coordinates[key])] for key in ("eta", "phi", "pt"))
    logarithmic = coordinates["pt"].endswith("_log")  # weaver's log pT input is already a logarithm
    z = pt if logarithmic else np.log10(np.maximum(pt, np.finfo(np.float32).tiny))
    relevance = table.node[rows]
    size = np.linalg.norm(relevance, axis=1)
    size = NODE_SIZE[0] + (NODE_SIZE[1] - NODE_SIZE[0]) * size / (size.max() if size.max() > 0 else 1.0)
    total = relevance.sum(1)

    figure = plt.figure(figsize=(8.5, 7.0)) if figure is None else figure
    axes = figure.add_subplot(position, projection="3d")
    points = np.stack([eta, phi, z], axis=1)
    subtitle = f"no edge relevance from {table.method}"
    if table.has_edges:
        edges = table.edge_slice(jet)
        src, dst, score = table.edge_src[edges], table.edge_dst[edges], table.edge_score[edges]
        pairs, pair_score = _track_pairs(src, dst, score)
        significant = pair_score > pair_score.mean() + edge_significance * pair_score.std()
        edge_norm = Normalize(0.0, float(pair_score.max()) if pair_score.max() > 0 else 1.0)
        if (~significant).any():
            axes.add_collection3d(Line3DCollection(points[pairs[~significant]], colors="0.6", linewidths=0.4,
                                                   alpha=0.15))
        if significant.any():
            axes.add_collection3d(Line3DCollection(points[pairs[significant]], cmap=EDGE_COLORMAP, norm=edge_norm,
                                                   array=pair_score[significant], linewidths=2.0))
        figure.colorbar(ScalarMappable(edge_norm, EDGE_COLORMAP), ax=axes, shrink=0.55, pad=0.02,
                        label="edge score S_edge (both directions)")
        subtitle = (f"coloured: {int(significant.sum())} of {len(pairs)} track pairs with S_edge above mean + "
                    f"{edge_significance:g} sd")
    norm = centred_norm(total)
    axes.scatter(eta, phi, z, s=size, c=total, cmap=DIVERGING, norm=norm, edgecolors="black", linewidths=0.4,
                 depthshade=False)
    figure.colorbar(ScalarMappable(norm, DIVERGING), ax=axes, shrink=0.55, pad=0.1,
                    label="track relevance (sum of R over features)")
    largest = float(np.linalg.norm(relevance, axis=1).max())
    handles = [axes.scatter([], [], [], s=NODE_SIZE[0] + (NODE_SIZE[1] - NODE_SIZE[0]) * share, c="white",
                            edgecolors="black", linewidths=0.4) for share in (0.25, 0.5, 1.0)]
    axes.legend(handles, [f"{share * largest:.2g}" for share in (0.25, 0.5, 1.0)], title="|R| of the track",
                loc="upper left", fontsize=7, title_fontsize=7, labelspacing=1.2, borderpad=0.9)
    for axis in (axes.xaxis, axes.yaxis, axes.zaxis):
        axis.set_major_locator(MaxNLocator(4))
        axis.set_tick_params(labelsize=7, pad=1)
    axes.set_xlabel(coordinates["eta"], labelpad=6)
    axes.set_ylabel(coordinates["phi"], labelpad=6)
    axes.set_zlabel(coordinates["pt"] if logarithmic else f"log10 {coordinates['pt']}", labelpad=4)
    axes.set_title(f"{_jet_title(table, jet)}\nmarker size: |R| of the track; {subtitle}", fontsize=9)
    return figure


def _track_pairs(src: np.ndarray, dst: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected track pairs ``[P, 2]`` and the summed score of their two directed edges."""
    pairs = np.sort(np.stack([src, dst], axis=1), axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return unique, np.bincount(inverse.reshape(-1), weights=score, minlength=len(unique))


def plot_jets(table: RelevanceTable, folder: str | Path, settings: PlotSettings) -> list[Path]:
    """``hbb<k>_heatmap`` and ``hbb<k>_3d`` into ``folder`` for the k-th most confident Hbb jet of ``table``,
    for at most ``settings.jets`` jets."""
    if settings.jets <= 0 or table.num_jets == 0:
        return []
    folder = Path(folder)
    written: list[Path] = []
    for rank, jet in enumerate(most_confident(table, settings.jets, signal_of(table.classes)), start=1):
        stem = folder / f"{SIGNAL.lower()}{rank}"
        written += save_figure(relevance_heatmap(table, jet, settings.coordinates["pt"]),
                               stem.with_name(f"{stem.name}_heatmap"), settings.formats)
        written += save_figure(jet_3d(table, jet, settings.coordinates, settings.edge_significance),
                               stem.with_name(f"{stem.name}_3d"), settings.formats)
    return written
