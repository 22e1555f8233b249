"""Every attribution method side by side on the same model and jets: cost, faithfulness, ground truth, agreement.

``compare`` runs each method over the jets in batches, then scores its
explanations with :mod:`hin_captum.metrics`. ``scripts/benchmark.py`` turns the
results into a table, a CSV and plots.
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

from .errors import InputError
from .methods import METHODS, Explanation
from .metrics import (
    captum_infidelity, captum_sensitivity, conservation_error, faithfulness_curve, feature_importance, feature_share,
    fidelity_at_sparsity, peak_tensor_memory, spearman, spearman_per_graph, top_feature_rate,
)

REFERENCE_METHOD = "lrp"
"""Agreement is reported as the rank correlation with this method."""


@dataclass(frozen=True)
class ComparisonSettings:
    """How the comparison measures (the ``metrics`` section of ``configs/benchmark.yml``)."""

    batch_size: int = 64
    fractions: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
    fidelity_sparsity: float = 0.9
    subset_jets: int = 8
    perturbations: int = 4
    infidelity_noise: float = 0.1
    sensitivity_radius: float = 0.02
    memory_jets: int = 4
    seed: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ComparisonSettings":
        unknown = set(config) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown comparison setting(s) {', '.join(sorted(unknown))}")
        values = dict(config)
        if "fractions" in values:
            values["fractions"] = tuple(float(f) for f in values["fractions"])
        return cls(**values)


@dataclass
class MethodResult:
    """One method's scores on one set of jets."""

    method: str
    row: dict[str, float]
    """The table row: metric name -> value (NaN where a metric does not apply)."""
    deletion_curve: np.ndarray
    """Mean target probability at each deletion fraction (features), for the plots."""
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


def _batches(jets: Sequence[Data], size: int) -> list[Batch]:
    return [Batch.from_data_list(list(jets[start : start + size])) for start in range(0, len(jets), size)]


def compare(
    model: nn.Module,
    jets: Sequence[Data],
    methods: Mapping[str, Mapping[str, Any]],
    settings: ComparisonSettings,
    target: int = 1,
    ground_truth_feature: int | None = None,
    progress: Callable[[str], None] = lambda name: None,
) -> list[MethodResult]:
    """Run every method (name -> options) on ``jets`` and score it; ``progress`` hears each finished method."""
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise InputError(f"unknown method(s) {', '.join(unknown)}: use any of {', '.join(sorted(METHODS))}")
    if len(jets) < settings.subset_jets:
        raise InputError(f"the comparison needs at least {settings.subset_jets} jets, got {len(jets)}")
    batches = _batches(jets, settings.batch_size)
    subset = Batch.from_data_list(list(jets[: settings.subset_jets]))
    memory_batch = Batch.from_data_list(list(jets[: settings.memory_jets]))
    randomized = randomized_copy(model, settings.seed)
    results = []
    for name, options in methods.items():
        method = METHODS[name](model, **options)
        # Untimed warm-up on a whole batch (allocator and autograd caches); one jet is enough for per-jet loops.
        method.explain(batches[0][0] if method.one_graph_at_a_time else batches[0], target)
        start = time.perf_counter()
        explanations = [method.explain(batch, target) for batch in batches]
        seconds = time.perf_counter() - start
        row = {"ms per jet": 1e3 * seconds / len(jets), "jets per s": len(jets) / seconds}
        row["peak MB"] = peak_tensor_memory(lambda: method.explain(memory_batch, target)) / 2**20
        row.update(_faithfulness(model, batches, explanations, settings))
        row.update(_captum_metrics(method, subset, target, settings))
        row["conservation error"] = (
            float(np.median(np.concatenate([conservation_error(e) for e in explanations])))
            if method.conserves else float("nan")
        )
        importance = np.concatenate([feature_importance(e) for e in explanations])
        if ground_truth_feature is not None:
            row.update(_ground_truth(explanations, importance, ground_truth_feature))
        original = method.explain(subset, target)
        shuffled = METHODS[name](randomized, **options).explain(subset, target)
        row["rho after randomization"] = float(np.mean(spearman_per_graph(original, shuffled)))
        magnitude = sum(e.node.abs().sum(0) for e in explanations).double().cpu().numpy()
        results.append(MethodResult(
            name, row, _mean_deletion(model, batches, explanations, settings),
            magnitude / max(magnitude.sum(), 1e-300), importance,
        ))
        progress(name)
    _add_agreement(results)
    return results


def _faithfulness(model: nn.Module, batches: list[Batch], explanations: list[Explanation],
                  settings: ComparisonSettings) -> dict[str, float]:
    areas: dict[str, list[np.ndarray]] = {"deletion AUC (features)": [], "deletion AUC (tracks)": [],
                                          "insertion AUC (features)": []}
    fidelity_plus = fidelity_minus = 0.0
    for batch, explanation in zip(batches, explanations):
        for key, mode, unit in (("deletion AUC (features)", "deletion", "feature"),
                                ("deletion AUC (tracks)", "deletion", "track"),
                                ("insertion AUC (features)", "insertion", "feature")):
            curve = faithfulness_curve(model, batch, explanation, np.array(settings.fractions), mode, unit)
            areas[key].append(curve.area())
        plus, minus = fidelity_at_sparsity(model, batch, explanation, settings.fidelity_sparsity)
        fidelity_plus += plus * batch.num_graphs
        fidelity_minus += minus * batch.num_graphs
    n_jets = sum(batch.num_graphs for batch in batches)
    row = {key: float(np.concatenate(values).mean()) for key, values in areas.items()}
    row["fidelity+"], row["fidelity-"] = fidelity_plus / n_jets, fidelity_minus / n_jets
    return row


def _mean_deletion(model: nn.Module, batches: list[Batch], explanations: list[Explanation],
                   settings: ComparisonSettings) -> np.ndarray:
    curves = [faithfulness_curve(model, b, e, np.array(settings.fractions)).probability
              for b, e in zip(batches, explanations)]
    return np.concatenate(curves).mean(0)


def _captum_metrics(method, subset: Batch, target: int, settings: ComparisonSettings) -> dict[str, float]:
    explanation = method.explain(subset, target)
    return {
        "infidelity": float(np.mean(captum_infidelity(method, subset, explanation, settings.infidelity_noise,
                                                      settings.perturbations, settings.seed))),
        "sensitivity": float(np.mean(captum_sensitivity(method, subset, explanation.target,
                                                        settings.sensitivity_radius, settings.perturbations,
                                                        settings.seed))),
    }


def _ground_truth(explanations: list[Explanation], importance: np.ndarray, feature: int) -> dict[str, float]:
    node = torch.cat([explanation.node for explanation in explanations])
    return {f"share of |R| on feature {feature}": feature_share(node, feature),
            f"feature {feature} ranked first": top_feature_rate(importance, feature)}


def _add_agreement(results: list[MethodResult]) -> None:
    reference = next((r for r in results if r.method == REFERENCE_METHOD), None)
    for result in results:
        if reference is None:
            result.row[f"rho vs {REFERENCE_METHOD}"] = float("nan")
            continue
        rhos = [spearman(a, b) for a, b in zip(result.importance, reference.importance)]
        result.row[f"rho vs {REFERENCE_METHOD}"] = float(np.mean(rhos))


def markdown_table(results: Sequence[MethodResult]) -> str:
    """The results as a markdown table, one row per method, columns in the order measured."""
    columns = list(dict.fromkeys(key for result in results for key in result.row))
    header = [column.replace("|", "\\|") for column in columns]  # |R| must not end a cell
    lines = ["| method | " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns)]
    for result in results:
        cells = [_format(result.row.get(column, float("nan"))) for column in columns]
        lines.append(f"| {result.method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _format(value: float) -> str:
    if np.isnan(value):
        return "n/a"
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"
