"""Prototypes side by side: how many reach p(target) >= 0.99, what they cost, how far they are from real jets of
the target class (:func:`~hin_captum.metrics.manifold.separability_auc`: 0.5 cannot be told apart, 1 always can)
and which features moved.

For contrast: naive activation maximisation (Adam on the features, nothing keeps them on
the data), the starting jets, real background jets, real target jets only clamped to each
range (what the range costs by itself), and the real target jets the model is sure of.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from tqdm import tqdm

from ..config import bundled, load_config
from ..data import read_root, write_toy_root
from ..data.schema import CMS_HBB
from ..metrics.manifold import batch_statistics, separability_auc
from ..models.tagger import as_tagger
from ..util.modes import eval_mode
from ..models.specs import load_tagger
from ..plots.style import feature_labels
from ..prototypes import TrackManifold, prototype
from ..prototypes.run import CONFIDENT
from .tables import markdown_table

SCORING_BATCH = 1000
"""Jets per forward pass when the real jets are scored."""


def prototypes_benchmark(config: Mapping[str, Any]) -> str:
    """The markdown tables of ``configs/bench_prototypes.yml``: the comparison, then the features that moved."""
    defaults = load_config("prototype")["optimisation"]
    jets = read_root(bundled(config["jets"])).jets
    target = int(config["target"])
    with tempfile.TemporaryDirectory() as folder:
        real = read_root(write_toy_root(Path(folder) / "real.root", int(config["real"]["jets"]),
                                        int(config["real"]["seed"]))).jets
        signal_only = read_root(write_toy_root(Path(folder) / "hbb.root", int(config["confident"]["jets"]),
                                               int(config["confident"]["seed"]), signal_fraction=1.0)).jets
    signal = Batch.from_data_list([jet for jet in real if int(jet.y) == target])
    seeds = [int(seed) for seed in config["auc_seeds"]]
    signal_statistics = batch_statistics(signal)

    def auc(batch: Batch) -> float:
        statistics = batch_statistics(batch)
        return sum(separability_auc(statistics, signal_statistics, seed) for seed in seeds) / len(seeds)

    rows: list[dict[str, Any]] = [{"model": "-", "jets": "real QCD jets",
                                   "AUC vs real Hbb": auc(Batch.from_data_list([j for j in real if int(j.y) != target]))}]
    for quantiles in sorted({tuple(defaults["quantiles"]), *(tuple(v["quantiles"]) for v in config["variants"].values()
                                                             if "quantiles" in v)}):
        manifold = TrackManifold.of_tracks(Batch.from_data_list(jets).x, quantiles, int(defaults["discrete_levels"]))
        clamped = signal.clone()
        clamped.x = manifold.snap(manifold.clamp(signal.x))
        rows.append({"model": "-", "jets": f"real Hbb jets clamped to {_percent(quantiles)}",
                     "AUC vs real Hbb": auc(clamped)})
    models = {name: load_tagger(spec) for name, spec in config["models"].items()}
    for name, model in models.items():
        p = _scores_of(model, signal_only, target)
        sure = [jet for jet, score in zip(signal_only, p) if score >= CONFIDENT]
        most = [signal_only[int(k)] for k in torch.argsort(p, descending=True)[: int(config["most_confident"])]]
        rows.append({"model": name, "jets": f"real Hbb jets at p >= {CONFIDENT} ({len(sure)} of {len(signal_only)})",
                     "AUC vs real Hbb": auc(Batch.from_data_list(sure)) if len(sure) >= 4 else float("nan")})
        rows.append({"model": name, "jets": f"the {len(most)} real Hbb jets it is most sure of",
                     "min p(Hbb)": float(p.sort(descending=True).values[len(most) - 1]),
                     "AUC vs real Hbb": auc(Batch.from_data_list(most))})
    runs = [(name, variant, options) for name in config["models"] for variant, options in
            ([("default", {})] + (list(config["variants"].items()) if name in config["variant_models"] else []))]
    moved = []
    for name, variant, options in tqdm(runs, desc="prototypes", unit="run"):
        model = models[name]
        start = time.perf_counter()
        made = prototype(model, jets, target, int(config["n"]), int(config["seed"]), **options)
        seconds = time.perf_counter() - start
        if variant == "default":
            rows.append({"model": name, "jets": "starting jets", "min p(Hbb)": float(made.start_scores.min()),
                         "AUC vs real Hbb": auc(made.start)})
            naive = naive_maximisation(model, made.start, target, {**defaults, **options})
            rows.append({"model": name, "jets": "naive activation maximisation", **_reach(model, naive, target),
                         "mean abs change (spreads)": _change(naive, made.start, made.manifold),
                         "outside the real range": _outside(naive, made.manifold), "AUC vs real Hbb": auc(naive)})
            moved.append({"model": name, **_moved(made.jets, made.start, made.manifold, int(config["moved_features"]))})
        rows.append({"model": name, "jets": f"prototypes, {variant}", "seconds": seconds,
                     **_reach(model, made.jets, target),
                     "mean abs change (spreads)": _change(made.jets, made.start, made.manifold),
                     "outside the real range": _outside(made.jets, made.manifold),
                     "AUC vs real Hbb": auc(made.jets)})
    comparison = markdown_table(rows, ["model", "jets", "seconds", f"reach {CONFIDENT}", "min p(Hbb)",
                                       "mean abs change (spreads)", "outside the real range", "AUC vs real Hbb"])
    return f"{comparison}\n\n{markdown_table(moved)}"


def naive_maximisation(model: nn.Module, start: Batch, target: int, options: Mapping[str, Any]) -> Batch:
    """Activation maximisation with nothing to keep it on the data: Adam on the features in units of each
    feature's spread, the same steps and learning rate as :func:`~hin_captum.prototype`, no range, no snapping,
    no penalty."""
    spread = start.x.std(0).clamp_min(1e-6)
    shift = torch.zeros_like(start.x, requires_grad=True)
    optimiser = torch.optim.Adam([shift], lr=float(options["learning_rate"]))
    tagger = as_tagger(model)
    with eval_mode(tagger.network):
        for _ in range(int(options["steps"]) + int(options["refine_steps"])):
            logits = tagger.logits(start.x + spread * shift, start)
            (shift.grad,) = torch.autograd.grad(-torch.log_softmax(logits, -1)[:, target].sum(), [shift])
            optimiser.step()
    moved = start.clone()
    moved.x = (start.x + spread * shift).detach()
    return moved


def _scores_of(model: nn.Module, jets: Sequence[Data], target: int) -> Tensor:
    """p(target) of every jet, a batch of :data:`SCORING_BATCH` at a time."""
    scores = []
    tagger = as_tagger(model)
    with eval_mode(tagger.network), torch.no_grad():
        for first in range(0, len(jets), SCORING_BATCH):
            batch = Batch.from_data_list(list(jets[first:first + SCORING_BATCH]))
            scores.append(torch.softmax(tagger.logits(batch.x, batch), -1)[:, target])
    return torch.cat(scores)


def _reach(model: nn.Module, jets: Batch, target: int) -> dict[str, float]:
    tagger = as_tagger(model)
    with eval_mode(tagger.network), torch.no_grad():
        p = torch.softmax(tagger.logits(jets.x, jets), -1)[:, target]
    return {f"reach {CONFIDENT}": float((p >= CONFIDENT).float().mean()), "min p(Hbb)": float(p.min())}


def _change(jets: Batch, start: Batch, manifold: TrackManifold) -> float:
    """The mean |change| of a track feature from the starting jet, in units of the feature's spread."""
    return float(((jets.x - start.x).abs() / manifold.spread).mean())


def _outside(jets: Batch, manifold: TrackManifold) -> float:
    """The share of track feature values outside the real range (or off the real values of a discrete feature)."""
    return float((manifold.snap(manifold.clamp(jets.x)) != jets.x).float().mean())


def _moved(jets: Batch, start: Batch, manifold: TrackManifold, top: int) -> dict[str, str]:
    """The ``top`` features by the mean change per track in spreads (signed), repeated columns once."""
    change = ((jets.x - start.x) / manifold.spread).mean(0)
    names = feature_labels(CMS_HBB.features)
    order = [k for k in torch.argsort(change.abs(), descending=True).tolist() if int(manifold.copies[k]) == k][:top]
    return {f"{rank}": f"{names[k]} {float(change[k]):+.2f}" for rank, k in enumerate(order, start=1)}


def _percent(quantiles: Sequence[float]) -> str:
    return f"{100 * quantiles[0]:g}-{100 * quantiles[1]:g}%"
