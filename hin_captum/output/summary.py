"""The global summary of an attribution run: histograms (``hist``) filled chunk by chunk.

Every quantity is a sum (of relevance, of ``|R|``, of counts), so the summaries of
chunks, files and workers merge exactly by addition, in any order. Means are taken
only when plotting. ``configs/summary.yml`` holds the binning. The summary is
written as ROOT histograms (``summary.root``, readable with uproot) with its
description as a JSON string, and read back for plotting without explaining again.

Histograms (``C`` classes, ``F`` features; ``true``/``predicted`` are class indices):

- ``jets`` [true, predicted]: jets counted;
- ``feature_signed``, ``feature_abs``, ``feature_top`` [feature, true, predicted]: per jet, the
  feature's summed relevance over the tracks, its summed ``|R|``, and 1 if it is among the
  jet's ``top`` features by summed ``|R|``;
- ``rank_signed``, ``rank_abs``, ``rank_tracks`` [pT rank, true]: track relevance by pT rank;
- ``edge_signed``, ``edge_abs``, ``edge_pairs`` [ΔR, true]: track-pair relevance by angular distance;
- ``mass_abs`` [mass, feature, true], ``mass_jets`` [mass, true], and the same for ``pt``;
- ``value_<k>`` [value, relevance]: tracks counted by feature ``k``'s value and relevance.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hist
import numpy as np
import uproot
from torch import Tensor

from ..util import atomic_path
from ..config import load_config
from ..util import InputError
from ..data.root import rank_within_jets
from .table import RelevanceTable

SUMMARY_FORMAT = "hin_captum.summary/1"
METADATA_KEY = "hin_captum_summary"


# Every axis has both flow bins: ROOT histograms always have them, and uproot writes a histogram bin for bin only
# when each of its axes has them too.


def relevance_edges(low: float, high: float, bins_per_side: int) -> np.ndarray:
    """Bin edges for signed relevance: log-spaced ``|R|`` from ``low`` to ``high`` on both sides, one bin around 0."""
    positive = np.geomspace(low, high, bins_per_side + 1)
    return np.concatenate([-positive[::-1], positive])


@dataclass
class RelevanceSummary:
    """The histograms of a run (see the module docstring) and what they describe."""

    histograms: dict[str, hist.Hist]
    features: list[str]
    classes: list[str]
    target: str
    """What was explained, for the titles: a class name or ``predicted``."""
    method: str
    jets: int = 0
    description: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, features: Sequence[str], classes: Sequence[str], target: str, method: str,
              value_ranges: Mapping[str, tuple[float, float]], config: Mapping[str, Any] | None = None,
              ) -> "RelevanceSummary":
        """Empty histograms; ``value_ranges`` gives each continuous feature's value axis (name -> low, high)."""
        config = dict(config or load_config("summary"))
        features, classes = list(features), list(classes)
        n_classes = len(classes)
        feature = hist.axis.Integer(0, len(features), name="feature", label="input feature")
        true = hist.axis.Integer(0, n_classes, name="true", label="true class")
        predicted = hist.axis.Integer(0, n_classes, name="predicted", label="predicted class")
        rank = hist.axis.Integer(0, int(config["pt_rank_max"]), name="rank", label="track pT rank in the jet")
        delta_r = _regular(config["delta_r"], "delta_r", "track-pair ΔR")
        mass = _regular(config["jet_mass"], "mass", "jet soft-drop mass [GeV]")
        pt = _regular(config["jet_pt"], "pt", "jet pT [GeV]")
        weighted = hist.storage.Weight()
        histograms = {
            "jets": hist.Hist(true, predicted, storage=weighted),
            **{f"feature_{kind}": hist.Hist(feature, true, predicted, storage=weighted)
               for kind in ("signed", "abs", "top")},
            **{f"rank_{kind}": hist.Hist(rank, true, storage=weighted) for kind in ("signed", "abs", "tracks")},
            **{f"edge_{kind}": hist.Hist(delta_r, true, storage=weighted) for kind in ("signed", "abs", "pairs")},
            "mass_abs": hist.Hist(mass, feature, true, storage=weighted),
            "mass_jets": hist.Hist(mass, true, storage=weighted),
            "pt_abs": hist.Hist(pt, feature, true, storage=weighted),
            "pt_jets": hist.Hist(pt, true, storage=weighted),
        }
        edges = relevance_edges(**config["relevance"])
        relevance = hist.axis.Variable(edges, name="relevance", label="relevance R")
        for index, name in enumerate(features):
            if name in config["discrete"]:
                low, high = config["discrete"][name]
                value = hist.axis.Integer(int(low), int(high) + 1, name="value", label=name)
            else:
                low, high = value_ranges[name]
                value = hist.axis.Regular(int(config["value"]["bins"]), low, high, name="value", label=name)
            histograms[f"value_{index}"] = hist.Hist(value, relevance, storage=weighted)
        description = {"config": config, "value_ranges": {name: list(value_ranges[name]) for name in value_ranges}}
        return cls(histograms, features, classes, target, method, 0, description)

    @property
    def config(self) -> dict[str, Any]:
        """The binning the histograms were made with (``configs/summary.yml`` at the time)."""
        return self.description["config"]

    def add(self, table: RelevanceTable, coordinates: Mapping[str, str]) -> None:
        """Fill in the jets of ``table``; ``coordinates`` names the eta, phi (for ΔR) and pT (rank) features."""
        if table.num_jets == 0:
            return
        h = self.histograms
        n_features = len(self.features)
        true = table.label.astype(np.int64)
        predicted = table.prediction.argmax(1)
        signed, magnitude = table.per_jet_sum(table.node), table.per_jet_sum(np.abs(table.node))
        top = np.zeros_like(magnitude)
        np.put_along_axis(top, np.argsort(-magnitude, axis=1, kind="stable")[:, : self.config["top"]], 1.0, 1)
        h["jets"].fill(true=true, predicted=predicted)
        per_feature = dict(feature=np.tile(np.arange(n_features), table.num_jets),
                           true=np.repeat(true, n_features), predicted=np.repeat(predicted, n_features))
        for kind, values in (("signed", signed), ("abs", magnitude), ("top", top)):
            h[f"feature_{kind}"].fill(**per_feature, weight=values.ravel())

        jet_of_track = table.jet_of_track
        first_track = np.cumsum(table.tracks_per_jet) - table.tracks_per_jet
        position = np.arange(len(jet_of_track)) - first_track[jet_of_track]
        pt_feature = coordinates.get("pt", self.config["pt_feature"])
        pt = table.x[:, self.features.index(pt_feature)] if pt_feature in self.features else np.zeros(len(table.x))
        rank = rank_within_jets(pt, jet_of_track, position)
        track = table.node.sum(1)
        track_true = true[jet_of_track]
        for kind, values in (("signed", track), ("abs", np.abs(track)), ("tracks", np.ones_like(track))):
            h[f"rank_{kind}"].fill(rank=rank, true=track_true, weight=values)

        if table.has_edges:
            edge_jet = np.repeat(np.arange(table.num_jets), table.edges_per_jet)
            source = first_track[edge_jet] + table.edge_src
            destination = first_track[edge_jet] + table.edge_dst
            eta, phi = (table.x[:, self.features.index(coordinates[key])] for key in ("eta", "phi"))
            delta_phi = np.mod(phi[source] - phi[destination] + np.pi, 2 * np.pi) - np.pi
            delta_r = np.hypot(eta[source] - eta[destination], delta_phi)
            edge = table.edge_relevance
            for kind, values in (("signed", edge), ("abs", np.abs(edge)), ("pairs", np.ones_like(edge))):
                h[f"edge_{kind}"].fill(delta_r=delta_r, true=true[edge_jet], weight=values)

        for axis, spectator in (("mass", "fj_sdmass"), ("pt", "fj_pt")):
            if spectator not in table.spectators:  # a weaver data config without these observers
                continue
            values = table.spectators[spectator]
            h[f"{axis}_jets"].fill(values, true)
            h[f"{axis}_abs"].fill(np.repeat(values, n_features), per_feature["feature"], per_feature["true"],
                                  weight=magnitude.ravel())
        for index, name in enumerate(self.features):
            value = table.x[:, index]
            if name in self.config["discrete"]:
                value = np.rint(value).astype(np.int64)
            h[f"value_{index}"].fill(value=value, relevance=table.node[:, index])
        self.jets += table.num_jets

    def __add__(self, other: "RelevanceSummary") -> "RelevanceSummary":
        """The summary of both runs' jets (histograms added bin by bin)."""
        if self.features != other.features or self.classes != other.classes or set(self.histograms) != set(
                other.histograms):
            raise ValueError("summaries of different features, classes or histograms cannot be added")
        added = {name: self.histograms[name] + other.histograms[name] for name in self.histograms}
        return RelevanceSummary(added, self.features, self.classes, self.target, self.method,
                                self.jets + other.jets, dict(self.description))

    def write(self, path: str | Path) -> Path:
        """Write every histogram and the description to a ROOT file of their own, atomically."""
        path = Path(path)
        with atomic_path(path) as temporary, uproot.recreate(temporary) as file:
            self.write_into(file)
        return path

    def write_into(self, file: uproot.WritableDirectory, folder: str = "") -> None:
        """Write the histograms and the description into an open ROOT file (in ``folder``, if given)."""
        prefix = f"{folder}/" if folder else ""
        for name, histogram in self.histograms.items():
            file[prefix + name] = histogram
        file[prefix + METADATA_KEY] = json.dumps({
            "format": SUMMARY_FORMAT, "features": self.features, "classes": self.classes, "target": self.target,
            "method": self.method, "jets": self.jets, "description": self.description,
        })

    @classmethod
    def read(cls, path: str | Path, folder: str = "") -> "RelevanceSummary":
        """A summary written by :meth:`write` or :meth:`write_into`: the same histograms as those written (axes
        rebuilt from the recorded binning, contents read back), so it adds to summaries made in this process."""
        prefix = f"{folder}/" if folder else ""
        with uproot.open(path) as file:
            if prefix + METADATA_KEY not in file:
                raise InputError(f"{path} holds no hin_captum summary: give a summary.root or a friend file")
            meta = json.loads(str(file[prefix + METADATA_KEY]))
            if meta.get("format") != SUMMARY_FORMAT:
                raise InputError(f"{path} holds a summary of another format ({meta.get('format')})")
            description = meta["description"]
            summary = cls.empty(meta["features"], meta["classes"], meta["target"], meta["method"],
                                {name: tuple(bounds) for name, bounds in description["value_ranges"].items()},
                                description["config"])
            for name, histogram in summary.histograms.items():
                stored = file[prefix + name].values(flow=True), file[prefix + name].variances(flow=True)
                inner = tuple(slice(0 if axis.traits.underflow else 1, None if axis.traits.overflow else -1)
                              for axis in histogram.axes)
                view = histogram.view(flow=True)
                view.value, view.variance = stored[0][inner], stored[1][inner]
        summary.jets = meta["jets"]
        return summary


def value_ranges(mean: Tensor, spread: Tensor, features: Sequence[str], config: Mapping[str, Any] | None = None
                 ) -> dict[str, tuple[float, float]]:
    """Each feature's value axis: ``mean +- value.width * spread`` (the input BatchNorm's running statistics)."""
    width = float((config or load_config("summary"))["value"]["width"])
    mean, spread = mean.detach().double().cpu(), spread.detach().double().cpu()
    return {name: (float(mean[k] - width * spread[k]), float(mean[k] + width * spread[k]))
            for k, name in enumerate(features)}


def _regular(spec: Mapping[str, Any], name: str, label: str) -> hist.axis.Regular:
    return hist.axis.Regular(int(spec["bins"]), float(spec["low"]), float(spec["high"]), name=name, label=label)
