"""Where real tracks lie: per-feature ranges, spreads and, for discrete features, the values they take."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..util import InputError


@dataclass(frozen=True)
class TrackManifold:
    """Per track feature: the ``[low, high]`` range of real tracks (quantiles), the spread (standard deviation)
    and, for discrete features (flags, charges, counts), the sorted values real tracks take."""

    low: Tensor
    high: Tensor
    spread: Tensor
    levels: tuple[Tensor | None, ...]
    """Per feature, its real values when it is discrete, else None."""

    @classmethod
    def of_tracks(cls, x: Tensor, quantiles: tuple[float, float], discrete_levels: int) -> "TrackManifold":
        """The manifold of the tracks ``x [tracks, F]``."""
        if x.ndim != 2 or x.shape[0] < 2:
            raise InputError(f"prototypes need the tracks of real jets, [tracks, features], got shape {tuple(x.shape)}")
        x = x.detach().double()
        bounds = torch.quantile(x, torch.tensor(quantiles, dtype=x.dtype), dim=0)
        levels = []
        for column in x.T:
            values = torch.unique(column)
            levels.append(values.float() if len(values) <= discrete_levels else None)
        spread = x.std(0).clamp_min(1e-6)
        return cls(bounds[0].float(), bounds[1].float(), spread.float(), tuple(levels))

    @property
    def discrete(self) -> Tensor:
        """Which features are discrete, as a mask [F]."""
        return torch.tensor([values is not None for values in self.levels])

    def clamp(self, x: Tensor) -> Tensor:
        """``x`` inside the real range of every feature (differentiably inside it)."""
        return torch.maximum(torch.minimum(x, self.high.to(x)), self.low.to(x))

    def snap(self, x: Tensor) -> Tensor:
        """``x`` with every discrete feature moved to the nearest value real tracks take (within the range)."""
        x = x.clone()
        for feature, values in enumerate(self.levels):
            if values is None:
                continue
            inside = values[(values >= self.low[feature]) & (values <= self.high[feature])]
            inside = (values if len(inside) == 0 else inside).to(x)
            nearest = (x[:, feature, None] - inside).abs().argmin(1)
            x[:, feature] = inside[nearest]
        return x
