"""Where real tracks lie: per-feature ranges, spreads and, for discrete features, the values they take."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..metrics.manifold import jet_statistics
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
    copies: Tensor
    """Per feature, the first feature equal to it on every real track (itself for most): a branch the model reads
    twice (track_pt, track_ptrel, track_dlambdadz) stays one value, so the prototype can be written as an ntuple."""

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
        copies = [next(first for first in range(feature + 1) if torch.equal(x[:, first], x[:, feature]))
                  for feature in range(x.shape[1])]
        return cls(bounds[0].float(), bounds[1].float(), spread.float(), tuple(levels), torch.tensor(copies))

    @property
    def discrete(self) -> Tensor:
        """Which features are discrete, as a mask [F]."""
        return torch.tensor([values is not None for values in self.levels])

    def clamp(self, x: Tensor) -> Tensor:
        """``x`` inside the real range of every feature (differentiably inside it), copies equal to their first."""
        x = torch.index_select(x, 1, self.copies.to(x.device))
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


@dataclass(frozen=True)
class JetDensity:
    """A Gaussian density of real jets of one class over their per-jet statistics (the mean and the spread of
    every track feature, :func:`~hin_captum.metrics.manifold.jet_statistics`), in units of each statistic's
    spread; the covariance is shrunk towards its diagonal, as few jets estimate many statistics."""

    centre: Tensor
    scale: Tensor
    precision: Tensor

    @classmethod
    def of_jets(cls, x: Tensor, batch: Tensor, num_jets: int, shrinkage: float) -> "JetDensity":
        """The density of the jets ``x [tracks, F]``, ``batch [tracks]`` (at least two jets)."""
        if num_jets < 2:
            raise InputError(f"a density of real jets needs at least 2 jets of the target class, got {num_jets}")
        statistics = jet_statistics(x.detach().double(), batch, num_jets)
        centre, scale = statistics.mean(0), statistics.std(0).clamp_min(1e-6)
        standard = (statistics - centre) / scale
        correlation = standard.T @ standard / (num_jets - 1)
        shrunk = (1 - shrinkage) * correlation + shrinkage * torch.diag(torch.diagonal(correlation))
        precision = torch.linalg.pinv(shrunk, hermitian=True)
        return cls(centre.float(), scale.float(), precision.float())

    def energy(self, x: Tensor, batch: Tensor, num_jets: int) -> Tensor:
        """Per jet, half the squared Mahalanobis distance of its statistics to the real jets, per statistic [jets]."""
        standard = (jet_statistics(x, batch, num_jets) - self.centre.to(x)) / self.scale.to(x)
        return 0.5 * ((standard @ self.precision.to(x)) * standard).sum(1) / standard.shape[1]
