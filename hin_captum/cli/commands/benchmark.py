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
    try:
        report = run_benchmark(load_config(args.config), Path(args.out), parts, methods, progress)
    finally:
        for bar in bars:
            bar.close()
    print(report)
    print(f"wrote {args.out}/results.md, results.csv and plots in {time.perf_counter() - started:.0f} s")
    return 0
