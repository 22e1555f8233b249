"""What every figure shares: atomic PNG/PDF files, a diverging scale centred at 0, feature labels."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from ..util import atomic_path
from ..data.schema import CMS_HBB, unique_names

DIVERGING = "RdBu_r"
"""Colormap for signed relevance: blue negative, white 0, red positive."""
DPI = 150
FORMATS = ("png", "pdf")


def save_figure(figure: plt.Figure, path: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``figure`` once per format (``path`` with that suffix), each file atomically; close the figure."""
    unknown = [kind for kind in formats if kind not in FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
    written = []
    try:
        for kind in formats:
            target = Path(path).with_suffix(f".{kind}")
            with atomic_path(target) as temporary:
                figure.savefig(temporary, format=kind, dpi=DPI, bbox_inches="tight")
            written.append(target)
    finally:
        plt.close(figure)
    return written


def centred_norm(values: np.ndarray) -> Normalize:
    """A colour scale from ``-m`` to ``m``, ``m = max |values|``, so 0 is the colormap's centre (white)."""
    finite = np.abs(np.asarray(values, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    bound = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return Normalize(vmin=-bound, vmax=bound)


def feature_labels(names: Sequence[str] | None = None) -> list[str]:
    """Axis labels of the input features (default: the 48 of ``configs/definitions.yml``), repeats told apart."""
    return unique_names(CMS_HBB.features if names is None else names)
