"""Compare attribution methods side by side, and the LRP composites behind the default: tables, CSV and plots."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from ...benchmarks.study import run_benchmark
from ...config import load_config
from ...util import InputError

NAME = "benchmark"
HELP = "compare attribution methods, and the LRP composites behind the default (configs/benchmark.yml)"
PARTS = ("methods", "composites")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="benchmark", help="config name or a YAML path")
    parser.add_argument("--out", default="benchmark_results", help="folder for the report, CSV and plots")
    parser.add_argument("--methods", help="comma-separated subset of the config's methods (methods part)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    parser.add_argument("--network", metavar="NET.py", help="compare the methods on a weaver model instead: its "
                                                            "network file, with --data-config, --model and --data")
    parser.add_argument("--data-config", metavar="DATA.yaml", help="the weaver data config of --network")
    parser.add_argument("--model", metavar="STATE.pt", help="the weaver state dict of --network")
    parser.add_argument("--data", nargs="+", help="ROOT files for --network")
    parser.add_argument("--jets", type=int, default=64, help="jets for --network (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        raise InputError(f"--parts takes {', '.join(PARTS)} separated by commas, got '{args.parts}'")
    started = time.perf_counter()
    bars: list[tqdm] = []

    def progress(title: str, total: int):
        bars.append(tqdm(total=total, desc=title, unit="method", leave=False))
        return lambda name: (bars[-1].set_postfix_str(name), bars[-1].update())

    methods = [name.strip() for name in args.methods.split(",")] if args.methods else None
    config = load_config(args.config)
    if args.network is not None:
        config, parts = weaver_benchmark(config, args), ["methods"]
    try:
        report = run_benchmark(config, Path(args.out), parts, methods, progress)
    finally:
        for bar in bars:
            bar.close()
    print(report)
    print(f"wrote {args.out}/results.md, results.csv and plots in {time.perf_counter() - started:.0f} s")
    return 0


def weaver_benchmark(config: dict, args: argparse.Namespace) -> dict:
    """The methods part of ``config`` on a weaver model and ntuples read with its data config."""
    if not (args.data_config and args.model and args.data):
        raise InputError("--network needs --data-config, --model and --data")
    dataset = {"model": {"network": args.network, "data_config": args.data_config, "state": args.model,
                         "inputs": "weaver"},
               "data": {"source": "weaver", "paths": list(args.data), "data_config": args.data_config,
                        "max_jets": args.jets},
               "exclude_methods": ["gnnexplainer", "captum-lrp"]}
    return {**config, "datasets": {"weaver": dataset}, "methods": {**config["methods"], "datasets": ["weaver"]}}
