"""Every attribution method side by side on the same model and jets: cost, faithfulness, ground truth, agreement.

``compare`` runs each method over the jets in batches, then scores its
explanations with :mod:`hin_captum.metrics`. Every method that has a reference
point gets the same one (``ComparisonSettings.reference``), and deletion and
insertion move features to that point, so all methods answer the same question.
With ``full=False`` it computes only the scores of the composite study (cost,
faithfulness, conservation, stability, ground truth), cheap enough for many LRP
variants. ``scripts/benchmark.py`` turns the results into tables, a CSV and plots.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from ..util import InputError, refuse_unknown
from . import tables
from .timing import fastest_batch_size, seconds_per_jet
from ..models.tagger import as_tagger, jet_reference
from ..methods import METHODS, AttributionMethod, Explanation, takes_option
from ..metrics import (
    captum_infidelity, captum_sensitivity, conservation_error, faithfulness_curve, feature_importance, feature_share,
    fidelity_at_sparsity, peak_tensor_memory, spearman, spearman_per_graph, stability, top_feature_rate,
)

REFERENCE_METHOD = "lrp"
"""Agreement is reported as the rank correlation with this method."""
COST_FLOOR = "inputxgradient"
"""Costs are also reported relative to this method (one forward and one backward pass)."""
CONSERVATION = ("sum R vs logit (corr)", "|sum R - logit| / |logit|", "|sum R - Δlogit| / |Δlogit|",
                "max |sum R| / (|logit| + 1)", "|R| at the reference")
"""Columns for methods whose relevance adds up (NaN for the others)."""
FAITHFULNESS = (  # column, mode, unit
    ("deletion AOPC (features)", "deletion", "feature"),
    ("deletion AOPC (tracks)", "deletion", "track"),
    ("insertion AOPC (features)", "insertion", "feature"),
)


@dataclass(frozen=True)
class ComparisonSettings:
    """How the comparison measures (the ``metrics`` section of ``configs/benchmark.yml``)."""

    batch_sizes: tuple[int, ...] = (64,)
    """Each method runs at the one of these that explains a jet fastest (its own best batch size)."""
    fractions: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
    reference: str = "auto"
    fidelity_sparsity: float = 0.9
    subset_jets: int = 8
    perturbations: int = 4
    infidelity_noise: float = 0.1
    sensitivity_radius: float = 0.02
    memory_jets: int = 4
    seed: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ComparisonSettings":
        refuse_unknown(config, cls.__dataclass_fields__, "comparison setting")
        values = dict(config)
        if "fractions" in values:
            values["fractions"] = tuple(float(f) for f in values["fractions"])
        if "batch_sizes" in values:
            values["batch_sizes"] = tuple(int(size) for size in values["batch_sizes"])
        return cls(**values)


@dataclass(frozen=True)
class GroundTruth:
    """What a data set plants (the sanity-check set): the feature that decides, and every feature with signal."""

    decisive: int
    planted: tuple[int, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "GroundTruth | None":
        if not config:
            return None
        return cls(int(config["decisive"]), tuple(int(f) for f in config.get("planted", [config["decisive"]])))

    def __str__(self) -> str:
        return f"planted features {', '.join(map(str, self.planted))}; feature {self.decisive} decides"


@dataclass
class MethodResult:
    """One method's scores on one set of jets."""

    method: str
    """The label of the row (a registry name, or a variant's label in the composite study)."""
    row: dict[str, float]
    """The table row: metric name -> value (NaN where a metric does not apply)."""
    curves: dict[str, np.ndarray]
    """Mean target logit at each fraction of node features removed (``deletion``) or inserted (``insertion``)."""
    feature_relevance: np.ndarray
    """``[F]`` mean ``|R|`` per feature, as a share of the method's total."""
    importance: np.ndarray = field(repr=False)
    """``[G, F]`` per-jet feature importance, for the agreement between methods."""


def randomized_copy(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every Linear layer re-initialised (the model-randomisation sanity check)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
    return clone


def method_spec(label: str, options: Mapping[str, Any], reference: str) -> tuple[str, dict[str, Any]]:
    """The registry name (``method`` in the options, else the label) and the options, with the common reference
    added for methods that take one."""
    options = dict(options)
    name = options.pop("method", label)
    if name not in METHODS:
        raise InputError(f"unknown method '{name}' for '{label}': use any of {', '.join(sorted(METHODS))}")
    if "reference" not in options and takes_option(name, "reference"):
        options["reference"] = reference
    return name, options


def _batches(jets: Sequence[Data], size: int) -> list[Batch]:
    return [Batch.from_data_list(list(jets[start : start + size])) for start in range(0, len(jets), size)]


def compare(
    model: nn.Module,
    jets: Sequence[Data],
    methods: Mapping[str, Mapping[str, Any]],
    settings: ComparisonSettings,
    target: int = 1,
    ground_truth: GroundTruth | None = None,
    progress: Callable[[str], None] = lambda name: None,
    full: bool = True,
) -> list[MethodResult]:
    """Run every method (label -> options, ``method`` naming the registry entry if not the label) on ``jets`` and
    score it; ``progress`` hears each finished label. ``full=False`` skips the costly metrics."""
    specs = {label: method_spec(label, options, settings.reference) for label, options in methods.items()}
    if len(jets) < (settings.subset_jets if full else 1):
        raise InputError(f"the comparison needs at least {settings.subset_jets} jets, got {len(jets)}")
    results = []
    by_size: dict[int, tuple[list[Batch], list[torch.Tensor]]] = {}
    for label, (name, options) in specs.items():
        method = METHODS[name](model, **options)
        size = _best_batch_size(method, jets, settings.batch_sizes, target)
        if size not in by_size:
            batches = _batches(jets, size)
            by_size[size] = batches, [_reference_output(model, b, settings.reference, target) for b in batches]
        batches, reference_outputs = by_size[size]
        # Untimed warm-up on a whole batch (allocator and autograd caches); one jet is enough for per-jet loops.
        method.explain(batches[0][0] if method.one_graph_at_a_time else batches[0], target)
        start = time.perf_counter()
        explanations = [method.explain(batch, target) for batch in batches]
        seconds = time.perf_counter() - start
        row = {"ms per jet": 1e3 * seconds / len(jets), "batch size": float(size)}
        curves = _faithfulness(model, batches, explanations, settings, row)
        row.update(_conservation(method, batches[0], explanations, reference_outputs, settings.reference, target)
                   if method.conserves else dict.fromkeys(CONSERVATION, float("nan")))
        importance = np.concatenate([feature_importance(e) for e in explanations])
        if ground_truth is not None:
            row.update(_ground_truth(explanations, importance, ground_truth))
        if full:
            row.update(_full_scores(model, method, name, options, batches, explanations, jets, settings, target))
        magnitude = sum(e.node.abs().sum(0) for e in explanations).double().cpu().numpy()
        results.append(MethodResult(label, row, curves, magnitude / max(magnitude.sum(), 1e-300), importance))
        progress(label)
    if full:
        _add_agreement(results)
    _add_cost_ratio(results)
    return results


def _add_cost_ratio(results: list[MethodResult]) -> None:
    """Each method's time per jet over input x gradient's (the floor), where that method was run."""
    floor = next((r.row["ms per jet"] for r in results if r.method == COST_FLOOR), None)
    if floor:
        for result in results:
            result.row["cost / input x gradient"] = result.row["ms per jet"] / floor


def _best_batch_size(method: AttributionMethod, jets: Sequence[Data], sizes: Sequence[int], target: int) -> int:
    """The batch size at which ``method`` explains a jet fastest (the largest, for methods that go jet by jet)."""
    candidates = [size for size in sizes if size <= len(jets)] or [min(sizes)]
    if method.one_graph_at_a_time or len(candidates) == 1:
        return max(candidates)
    return fastest_batch_size(lambda size: seconds_per_jet(method, jets, size, target), candidates)[0]


def _reference_output(model: nn.Module, batch: Batch, reference: str, target: int) -> torch.Tensor:
    """The target logit of each jet with every track at the reference point: ``f(x0)``."""
    x0 = jet_reference(reference, model, batch).expand_as(batch.x)
    with torch.no_grad():
        return as_tagger(model).logits(x0, batch)[:, target]


def _faithfulness(model: nn.Module, batches: list[Batch], explanations: list[Explanation],
                  settings: ComparisonSettings, row: dict[str, float]) -> dict[str, np.ndarray]:
    """AOPC of deletion and insertion at the reference into ``row``; the mean curves of node features back."""
    fractions = np.array(settings.fractions)
    curves: dict[str, list[np.ndarray]] = {"deletion": [], "insertion": []}
    for column, mode, unit in FAITHFULNESS:
        scores = []
        for batch, explanation in zip(batches, explanations):
            curve = faithfulness_curve(model, batch, explanation, fractions, mode, unit, settings.reference)
            scores.append(curve.aopc())
            if unit == "feature":
                curves[mode].append(curve.logit)
        row[column] = float(np.concatenate(scores).mean())
    return {mode: np.concatenate(values).mean(0) for mode, values in curves.items()}


def _conservation(method: AttributionMethod, batch: Batch, explanations: list[Explanation],
                  reference_outputs: list[torch.Tensor], reference: str, target: int) -> dict[str, float]:
    """How relevance adds up (to the logit, to its change from the reference jet), how far it can run away, and
    how much of it a feature at its reference value gets (every seventh feature of the first batch set there)."""
    totals = torch.cat([e.node_relevance_per_graph() for e in explanations]).double().cpu().numpy()
    outputs = torch.cat([e.output for e in explanations]).double().cpu().numpy()
    corr = float(np.corrcoef(totals, outputs)[0, 1]) if np.ptp(totals) > 0 and np.ptp(outputs) > 0 else float("nan")
    to_logit = np.concatenate([conservation_error(e) for e in explanations])
    to_change = np.concatenate([conservation_error(e, f0) for e, f0 in zip(explanations, reference_outputs)])
    values = (corr, float(np.median(to_logit)), float(np.median(to_change)), max(stability(e) for e in explanations),
              _relevance_at_reference(method, batch, reference, target))
    return dict(zip(CONSERVATION, values))


def _relevance_at_reference(method: AttributionMethod, batch: Batch, reference: str, target: int) -> float:
    """``max |R|`` of features set to their reference value, as a share of the largest ``|R|`` of the jets."""
    x0 = jet_reference(reference if method.reference is None else method.reference, method.tagger, batch).expand_as(batch.x)
    at_reference = torch.zeros_like(batch.x, dtype=torch.bool)
    at_reference[:, ::7] = True
    moved = batch.clone()
    moved.x = torch.where(at_reference, x0, batch.x)
    node = method.explain(moved, target).node.abs()
    return float(node[at_reference].max() / node.max().clamp_min(1e-30))


def _ground_truth(explanations: list[Explanation], importance: np.ndarray, truth: GroundTruth) -> dict[str, float]:
    node = torch.cat([explanation.node for explanation in explanations])
    return {"share of |R| on planted features": feature_share(node, truth.planted),
            "decisive feature ranked first": top_feature_rate(importance, truth.decisive)}


def _full_scores(model: nn.Module, method: AttributionMethod, name: str, options: Mapping[str, Any],
                 batches: list[Batch], explanations: list[Explanation], jets: Sequence[Data],
                 settings: ComparisonSettings, target: int) -> dict[str, float]:
    """The costly scores: memory, PyG fidelity, Captum infidelity and sensitivity, the randomisation check."""
    subset = Batch.from_data_list(list(jets[: settings.subset_jets]))
    memory_batch = Batch.from_data_list(list(jets[: settings.memory_jets]))
    row = {"peak MB": peak_tensor_memory(lambda: method.explain(memory_batch, target)) / 2**20}
    n_jets = sum(batch.num_graphs for batch in batches)
    fidelity = np.array([fidelity_at_sparsity(model, b, e, settings.fidelity_sparsity) for b, e in
                         zip(batches, explanations)])
    weights = np.array([b.num_graphs for b in batches]) / n_jets
    row["fidelity+"], row["fidelity-"] = (weights[:, None] * fidelity).sum(0)
    explanation = method.explain(subset, target)
    row["infidelity"] = float(np.mean(captum_infidelity(method, subset, explanation, settings.infidelity_noise,
                                                        settings.perturbations, settings.seed)))
    row["sensitivity"] = float(np.mean(captum_sensitivity(method, subset, explanation.target,
                                                          settings.sensitivity_radius, settings.perturbations,
                                                          settings.seed)))
    shuffled = METHODS[name](randomized_copy(model, settings.seed), **options).explain(subset, target)
    row["rho after randomization"] = float(np.mean(spearman_per_graph(explanation, shuffled)))
    return row


def _add_agreement(results: list[MethodResult]) -> None:
    reference = next((r for r in results if r.method == REFERENCE_METHOD), None)
    for result in results:
        if reference is None:
            result.row[f"rho vs {REFERENCE_METHOD}"] = float("nan")
            continue
        rhos = [spearman(a, b) for a, b in zip(result.importance, reference.importance)]
        result.row[f"rho vs {REFERENCE_METHOD}"] = float(np.mean(rhos))


def markdown_table(results: Sequence[MethodResult], first: str = "method") -> str:
    """The results as a markdown table, one row per method, columns in the order measured."""
    return tables.markdown_table([{first: result.method, **result.row} for result in results])
