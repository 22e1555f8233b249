"""Tagging performance: ROC AUC and background rejection at fixed signal efficiency."""
from __future__ import annotations

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal efficiency and background efficiency for every threshold, scores descending (ties grouped)."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    if labels.all() or not labels.any():
        raise ValueError("a ROC curve needs both signal and background jets")
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    signal = np.cumsum(labels)[last_of_tie] / labels.sum()
    background = np.cumsum(~labels)[last_of_tie] / (~labels).sum()
    return np.r_[0.0, signal], np.r_[0.0, background]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (probability that a signal jet outscores a background jet)."""
    signal, background = roc_curve(labels, scores)
    return float(np.trapezoid(signal, background))


def background_rejection(labels: np.ndarray, scores: np.ndarray, signal_efficiency: float) -> float:
    """``1 / background efficiency`` at the loosest cut reaching ``signal_efficiency`` (inf if no background passes).

    Between two thresholds the curve is interpolated linearly.
    """
    signal, background = roc_curve(labels, scores)
    reached = int(np.searchsorted(signal, signal_efficiency, side="left"))
    if signal[reached] == signal_efficiency:
        efficiency = float(background[reached])
    else:
        fraction = (signal_efficiency - signal[reached - 1]) / (signal[reached] - signal[reached - 1])
        efficiency = float(background[reached - 1] + fraction * (background[reached] - background[reached - 1]))
    return float("inf") if efficiency == 0 else 1.0 / efficiency
