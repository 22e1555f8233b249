"""Figures of prototypes: each beside its starting jet (the change of every feature of every track, in units of
the feature's spread, and the 3D view of the prototype's relevance), and which features moved over all of them."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import pyplot as plt

from ..output.table import RelevanceTable
from .jets import heatmap_width, jet_3d, track_heatmap


def prototype_figure(change: np.ndarray, start_pt: np.ndarray, features: Sequence[str], table: RelevanceTable,
                     jet: int, coordinates: dict[str, str], edge_significance: float, title: str) -> plt.Figure:
    """Left: ``change [tracks, F]`` (prototype minus starting jet, in spreads), features by tracks of decreasing
    starting pT, centred at 0; right: the prototype's relevance in 3D (:func:`~hin_captum.plots.jets.jet_3d`)."""
    width = heatmap_width(len(start_pt))
    figure = plt.figure(figsize=(width + 8.5, 10.0))
    grid = figure.add_gridspec(1, 2, width_ratios=[width, 8.5])
    axes = figure.add_subplot(grid[0])
    track_heatmap(axes, change, list(features), start_pt, f"{coordinates['pt']} of the starting jet",
                  "prototype - starting jet (in spreads of the feature over real tracks)")
    axes.set_title("change from the starting jet", fontsize=9)
    jet_3d(table, jet, coordinates, edge_significance, figure=figure, position=grid[1])
    figure.suptitle(title, fontsize=10)
    return figure


def moved_features(change: np.ndarray, batch: np.ndarray, features: Sequence[str], title: str,
                   top: int = 20) -> plt.Figure:
    """Per feature, the mean change of a prototype's tracks (in spreads) over the prototypes, with the spread of
    that mean over them: the ``top`` features that moved most, in which direction."""
    jets = int(batch.max()) + 1
    per_jet = np.zeros((jets, change.shape[1]))
    np.add.at(per_jet, batch, change)
    per_jet /= np.bincount(batch, minlength=jets)[:, None]
    mean, spread = per_jet.mean(0), per_jet.std(0)
    order = np.argsort(-np.abs(mean), kind="stable")[:top][::-1]
    figure, axes = plt.subplots(figsize=(8.0, 0.32 * len(order) + 2.0))
    colours = np.where(mean[order] > 0, "tab:red", "tab:blue")
    axes.barh(np.arange(len(order)), mean[order], xerr=spread[order], color=colours, alpha=0.8,
              error_kw={"elinewidth": 0.8, "ecolor": "0.3"})
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_yticks(np.arange(len(order)), [features[k] for k in order], fontsize=8)
    axes.set_xlabel("mean change per track, prototype - starting jet (in spreads; bar: sd over the prototypes)")
    axes.set_ylabel("input feature")
    axes.set_title(title, fontsize=9)
    return figure
