"""The benchmark of ``scripts/benchmark.py``: every method side by side, and the composite study behind the default.

Two parts run on the data sets of ``configs/benchmark.yml``:

- **methods**: every attribution method with every score of :func:`hin_captum.benchmarks.comparison.compare`;
- **composites**: every named LRP composite at every reference point (and the epsilon
  composite at several epsilons) with the scores that decide the default LRP: deletion and
  insertion AOPC at the reference, conservation, stability, the sanity set's ground truth
  and cost, beside Integrated Gradients and input x gradient from the same reference. Each
  variant's row says which of the default's goals (:data:`GOALS`) it meets.

The report (``results.md``), a CSV of every row and the figures go to one folder.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..util import atomic_path
from .comparison import ComparisonSettings, GroundTruth, MethodResult, compare, markdown_table
from ..config import bundled
from ..data.schema import CMS_HBB
from ..data.sources import load_jets
from ..util import InputError
from ..lrp import COMPOSITES, DEFAULT_EPSILON
from ..lrp.reference import track_mean
from ..metrics.agreement import average_ranks
from ..models.specs import load_tagger

RANKED = {  # the columns that break ties between variants meeting as many goals, and whether higher is better
    "deletion AOPC (features)": True, "deletion AOPC (tracks)": True, "insertion AOPC (features)": True,
    "sum R vs logit (corr)": True, "|sum R - logit| / |logit|": False,
}
DEFAULT_LRP = "lrp"
"""The registry name whose composite the study checks against the goals."""


@dataclass(frozen=True)
class Goal:
    """One goal for the default LRP, checked on one data set's row against Integrated Gradients' row."""

    text: str
    check: Callable[[Mapping[str, float], Mapping[str, float]], bool]
    datasets: tuple[str, ...] | None = None
    """The data sets it applies to (None: all)."""


def _at_least(column: str) -> Callable[[Mapping[str, float], Mapping[str, float]], bool]:
    return lambda row, ig: row.get(column, np.nan) >= ig.get(column, np.nan)


GOALS = (
    Goal("zero relevance at the reference", lambda row, ig: row.get("|R| at the reference", np.inf) == 0),
    Goal("deletion AOPC (features) >= IG", _at_least("deletion AOPC (features)"), ("sanity", "toy")),
    Goal("cost <= IG / 20", lambda row, ig: row["ms per jet"] <= ig["ms per jet"] / 20, ("sanity", "toy")),
    Goal("max |sum R| / (|logit| + 1) <= 20", lambda row, ig: row.get("max |sum R| / (|logit| + 1)", np.inf) <= 20),
    Goal("decisive feature first >= 95%", lambda row, ig: row.get("decisive feature ranked first", 0) >= 0.95,
         ("sanity",)),
    Goal("share on planted features >= IG", _at_least("share of |R| on planted features"), ("sanity",)),
    Goal("sum R vs logit corr >= 0.9", lambda row, ig: row.get("sum R vs logit (corr)", 0) >= 0.9, ("toy",)),
    Goal("|sum R - logit| / |logit| <= 0.25", lambda row, ig: row.get("|sum R - logit| / |logit|", np.inf) <= 0.25,
         ("toy",)),
)


@dataclass
class Section:
    """One table of the report."""

    part: str
    dataset: str
    title: str
    results: list[MethodResult]


def run_benchmark(
    config: Mapping[str, Any],
    out: Path,
    parts: Sequence[str] = ("methods", "composites"),
    methods: Sequence[str] | None = None,
    progress: Callable[[str, int], Callable[[str], None]] | None = None,
) -> str:
    """Run the ``parts`` of the benchmark that ``config`` describes; write report, CSV and figures to ``out``.

    ``methods`` restricts the methods part; ``progress(title, total)`` returns a callback
    that hears each finished method. Returns the report.
    """
    from . import figures as plots  # matplotlib only when figures are made

    settings = ComparisonSettings.from_config(config.get("metrics", {}))
    target = int(config.get("target", 1))
    method_list = _chosen_methods(config["methods"]["list"], methods)
    sections, notes = [], []
    for part in parts:
        spec = config[part]
        for dataset in spec["datasets"]:
            data_spec = config["datasets"][dataset]
            if data_spec.get("optional") and not bundled(data_spec["model"]).is_file():
                notes.append(f"{part}: data set '{dataset}' skipped ({data_spec['model']} is absent)")
                continue
            torch.manual_seed(settings.seed)
            model = load_tagger(data_spec["model"])
            jets, description = load_jets(_with_paths(data_spec["data"]))
            if spec.get("jets", len(jets)) < len(jets):
                jets, description = jets[: spec["jets"]], f"the first of {description}"
            truth = GroundTruth.from_config(data_spec.get("ground_truth"))
            variants = ({label: options for label, options in method_list.items()
                         if label not in data_spec.get("exclude_methods", ())}
                        if part == "methods" else composite_variants(spec, jets))
            title = f"{dataset} ({_model_name(data_spec['model'])}; {len(jets)} jets, {description}" + (
                f"; {truth})" if truth else ")")
            hear = progress(f"{part}: {dataset}", len(variants)) if progress else (lambda name: None)
            results = compare(model, jets, variants, settings, target, truth, hear, full=part == "methods")
            if part == "composites":
                add_goals(results, dataset)
            sections.append(Section(part, dataset, title, results))
            names = _feature_names(data_spec, jets[0].x.shape[1])
            plots.benchmark_figures(part, results, settings.fractions, names, title, out / f"{part}_{dataset}")
    if not sections:
        raise InputError("nothing to benchmark: every data set of the chosen parts is absent")
    report = _report(sections, notes) + choose_default(sections)
    with atomic_path(out / "results.md") as path:
        path.write_text(report)
    rows = [{"part": s.part, "dataset": s.dataset, "method": r.method, **r.row} for s in sections for r in s.results]
    with atomic_path(out / "results.csv") as path, open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    return report


def composite_variants(spec: Mapping[str, Any], jets: Sequence) -> dict[str, dict[str, Any]]:
    """The rows of the composite study: the baselines, then every composite at every reference point, then the
    epsilon composite at every extra epsilon (reference ``auto``). ``data`` is the mean track of ``jets``."""
    variants = {label: dict(options) for label, options in spec.get("baselines", {}).items()}
    references = {name: (track_mean(jets) if name == "data" else name) for name in spec["references"]}
    unknown = [name for name in spec["composites"] if name not in COMPOSITES]
    if unknown:
        raise InputError(f"unknown composite(s) {', '.join(unknown)}: use {', '.join(COMPOSITES)}")
    for composite in spec["composites"]:
        for name, reference in references.items():
            variants[f"{composite} ({name})"] = {"method": DEFAULT_LRP, "composite": composite,
                                                 "reference": reference}
    for epsilon in [value for value in spec.get("epsilons", []) if float(value) != DEFAULT_EPSILON]:
        variants[f"epsilon ε={epsilon:g} (auto)"] = {"method": DEFAULT_LRP, "composite": "epsilon",
                                                     "epsilon": float(epsilon), "reference": "auto"}
    return variants


def goals_for(dataset: str) -> list[Goal]:
    """The goals that apply to a data set."""
    return [goal for goal in GOALS if goal.datasets is None or dataset in goal.datasets]


def goals_column(dataset: str) -> str:
    return f"goals met (of {len(goals_for(dataset))})"


def add_goals(results: list[MethodResult], dataset: str) -> None:
    """Add how many goals each LRP row meets, against the row of Integrated Gradients."""
    ig = next((r.row for r in results if r.method == "ig"), None)
    if ig is None:
        return
    for result in results:
        if result.method not in ("ig", "inputxgradient"):
            result.row[goals_column(dataset)] = sum(bool(goal.check(result.row, ig)) for goal in goals_for(dataset))


def choose_default(sections: Sequence[Section]) -> str:
    """The choice of the default LRP, in words: the variant that meets the most goals over all data sets; among
    the variants that meet as many, the best mean rank (ties averaged) in faithfulness (the three AOPC columns)
    and conservation (how closely sum R follows the logit)."""
    studied = [section for section in sections if section.part == "composites"]
    if not studied:
        return ""
    rows_by_section = [{r.method: r.row for r in section.results if goals_column(section.dataset) in r.row}
                       for section in studied]
    goals: dict[str, float] = {}
    for section, rows in zip(studied, rows_by_section):
        for label, row in rows.items():
            goals[label] = goals.get(label, 0) + row[goals_column(section.dataset)]
    finalists = [label for label in goals if goals[label] == max(goals.values())]
    ranks: dict[str, list[float]] = {label: [] for label in finalists}
    for rows in rows_by_section:
        for column, higher_is_better in RANKED.items():
            values = np.array([rows[label].get(column, np.nan) if label in rows else np.nan for label in finalists])
            values = np.where(np.isnan(values), -np.inf if higher_is_better else np.inf, values)
            for label, rank in zip(finalists, average_ranks(-values if higher_is_better else values)):
                ranks[label].append(float(rank))  # rank 1: the best
    order = sorted(finalists, key=lambda label: np.mean(ranks[label]))
    most = sum(len(goals_for(section.dataset)) for section in studied)
    runners_up = sorted((label for label in goals if label not in finalists), key=lambda label: -goals[label])
    lines = ["\n### Choice of the default\n",
             f"Goals met over {', '.join(s.dataset for s in studied)} (of {most}); among the variants that meet the "
             f"most, the mean rank in {', '.join(RANKED)} over those data sets (1 is best, ties averaged):\n",
             "| variant | goals met | mean rank among those |", "|---|---:|---:|"]
    lines += [f"| {label} | {goals[label]:g} | {np.mean(ranks[label]):.2f} |" for label in order]
    lines += [f"| {label} | {goals[label]:g} | |" for label in runners_up[:3]]
    lines.append(f"\nChosen: **{order[0]}**.\n")
    return "\n".join(lines) + "\n"


def _chosen_methods(methods: Mapping[str, Any], chosen: Sequence[str] | None) -> dict[str, Any]:
    if not chosen:
        return dict(methods)
    missing = [name for name in chosen if name not in methods]
    if missing:
        raise InputError(f"method(s) {', '.join(missing)} not in the config: choose from {', '.join(methods)}")
    return {name: methods[name] for name in chosen}


def _with_paths(data: Mapping[str, Any]) -> dict[str, Any]:
    """Relative ``paths`` of a data section are bundled files or relative to the current folder, like the models."""
    data = dict(data)
    if "paths" in data:
        data["paths"] = [str(bundled(path)) for path in data["paths"]]
    return data


def _feature_names(data_spec: Mapping[str, Any], n_features: int) -> list[str]:
    """``feature k`` for data sets without physics (the planted ones marked), else the ntuples' names."""
    if data_spec["data"].get("source") == "weaver":  # a weaver model's inputs, as its data config names them
        from ..data.weaver import load_data_config, weaver_schema

        return weaver_schema(load_data_config(bundled(data_spec["data"]["data_config"]))).columns
    if data_spec.get("feature_names") != "numbered":
        return list(CMS_HBB.features)
    truth = GroundTruth.from_config(data_spec.get("ground_truth"))
    planted = set(truth.planted) if truth else set()
    return [f"feature {k}" + (" (planted)" if k in planted else "") for k in range(n_features)]


def _report(sections: Sequence[Section], notes: Sequence[str]) -> str:
    parts = {"methods": "Methods side by side", "composites": "Composite study: the default LRP"}
    lines = []
    for part, heading in parts.items():
        chosen = [section for section in sections if section.part == part]
        if not chosen:
            continue
        lines.append(f"## {heading}\n")
        if part == "composites":
            lines.append("Goals of the default (data sets they apply to): "
                         + "; ".join(f"{g.text} ({', '.join(g.datasets) if g.datasets else 'all'})" for g in GOALS)
                         + f". Default epsilon {DEFAULT_EPSILON:g}.\n")
        for section in chosen:
            first = "method" if part == "methods" else "variant"
            lines.append(f"### {section.title}\n\n{markdown_table(section.results, first)}\n")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _model_name(spec: str | Mapping[str, Any]) -> str:
    """How a data set's model is named in titles: its checkpoint, or a weaver model's state dict."""
    return str(spec["state"]) if isinstance(spec, Mapping) else str(spec)
