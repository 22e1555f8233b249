"""Compare attribution methods side by side: cost, faithfulness, ground truth, agreement; table, CSV and plots."""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from tqdm import tqdm

import hin_captum
from hin_captum.cli import atomic_path, run
from hin_captum.comparison import ComparisonSettings, compare, markdown_table
from hin_captum.config import feature_names, load_config
from hin_captum.data.sources import load_jets
from hin_captum.errors import InputError
from hin_captum.plots import benchmark as plots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="benchmark", help="config name in configs/ or a YAML path")
    parser.add_argument("--out", default="benchmark_results", help="folder for the table, CSV and plots")
    parser.add_argument("--methods", help="comma-separated subset of the config's methods")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    methods = dict(config["methods"])
    if args.methods:
        chosen = [name.strip() for name in args.methods.split(",")]
        missing = [name for name in chosen if name not in methods]
        if missing:
            raise InputError(f"method(s) {', '.join(missing)} not in the config: choose from {', '.join(methods)}")
        methods = {name: methods[name] for name in chosen}
    settings = ComparisonSettings.from_config(config.get("metrics", {}))
    out = Path(args.out)
    torch.manual_seed(settings.seed)

    sections, rows, started = [], [], time.perf_counter()
    for dataset, spec in config["datasets"].items():
        model = hin_captum.load_model(spec["model"])
        jets, description = load_jets(spec["data"])
        with tqdm(total=len(methods), desc=dataset, unit="method") as bar:
            results = compare(model, jets, methods, settings, target=int(config.get("target", 1)),
                              ground_truth_feature=spec.get("ground_truth_feature"),
                              progress=lambda name: (bar.set_postfix_str(name), bar.update()))
        title = f"{dataset} ({spec['model']}, {description})"
        sections.append(f"### {title}\n\n{markdown_table(results)}\n")
        rows += [{"dataset": dataset, "method": r.method, **r.row} for r in results]
        plots.deletion_curves(results, settings.fractions, dataset, out / f"deletion_{dataset}.png")
        plots.runtime_bars(results, dataset, out / f"runtime_{dataset}.png")
        plots.feature_relevance(results, feature_names(), dataset, out / f"features_{dataset}.png")

    report = "\n".join(sections)
    with atomic_path(out / "results.md") as path:
        path.write_text(report)
    with atomic_path(out / "results.csv") as path, open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    print(report)
    print(f"wrote {out}/results.md, results.csv and plots in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    run(main)
