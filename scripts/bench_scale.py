"""Benchmark the whole-sample pipeline: jets/s and peak memory at growing sizes, and on Dask workers.

Each size runs ``hin-captum attribute`` with its default options (batch size, chunk
size, figures) in a fresh process on toy jets spread over several files, and reports
its explain phase in jets/s and the peak resident memory of that process. The LRP pass
alone is timed in this process on jets already in memory, at the same batch size.
Then the same command runs with ``--workers 1`` and ``--workers 2`` (a local Dask
cluster) on the same files, against the in-process run.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

import hin_captum
from hin_captum.cli import run
from hin_captum.config import bundled, load_config
from hin_captum.data import RootJetReader, write_toy_root
from hin_captum.data.graphs import jet_batch
from hin_captum.distributed import default_threads
from hin_captum.methods import METHODS

RATE = re.compile(r"explained (\d+) jets of (\d+) file\(s\) in ([\d.]+) s")
MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
           "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
           "sys.exit(code)")


def toy_files(folder: Path, n_files: int, jets_per_file: int, seed: int) -> list[Path]:
    """The toy files of the benchmark, written once."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"toy_{seed + k}.root" for k in range(n_files)]
    missing = [path for path in paths if not path.exists()]
    for path in tqdm(missing, desc="toy files", unit="file", disable=not missing):
        write_toy_root(path, jets_per_file, seed=int(path.stem.split("_")[1]))
    return paths


def lrp_pass(paths: list[Path], method: str, batch_size: int, batches: int) -> float:
    """Jets per second of the LRP pass alone, on batches already built and in memory."""
    model = hin_captum.load_model(bundled(load_config("attribute")["model"]))
    chunk = next(RootJetReader(paths[0], step_size=batch_size * batches).chunks(0))
    starts = [0, *torch.cumsum(torch.as_tensor(chunk.tracks_per_jet), 0).tolist()]
    built = [jet_batch(chunk.x[starts[k]:starts[k + batch_size]], chunk.tracks_per_jet[k:k + batch_size])
             for k in range(0, batch_size * batches, batch_size)]
    explainer = METHODS[method](model)
    explainer.explain(built[0], 1)  # warm-up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for batch in built:
            explainer.explain(batch, 1)
        best = min(best, time.perf_counter() - started)
    return batch_size * len(built) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_scale", help="config name or a YAML path")
    parser.add_argument("--sizes", help="comma-separated jet counts (default: the config's)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else list(config["sizes"])
    per_file = int(config["jets_per_file"])
    paths = toy_files(Path(config["data_dir"]), -(-max(sizes) // per_file), per_file, int(config["seed"]))
    batch_size = int(load_config("attribute")["batch_size"])
    alone = lrp_pass(paths, config["method"], batch_size, int(config["lrp_pass_batches"]))
    rows = []
    for size in sizes:
        files = paths[: -(-size // per_file)]
        rate, rss, wall = attribute(config["method"], files, ["--max-jets", str(size)])
        rows.append((size, len(files), rate, rss, wall))
        print(f"{size} jets: {rate:.0f} jets/s, peak RSS {rss:.0f} MB", flush=True)
    scaling = []
    workers_files = paths[: -(-int(config["workers_jets"]) // per_file)]
    for workers in [0, *config["workers"]]:
        rate, _, wall = attribute(config["method"], workers_files, ["--workers", str(workers)] if workers else [])
        scaling.append((workers, rate, wall))
        print(f"{'in-process' if not workers else f'{workers} worker(s)'}: {rate:.0f} jets/s", flush=True)

    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads; batch size {batch_size}; "
          f"LRP pass alone on jets in memory: {alone:.0f} jets/s\n")
    print("| jets | files | explain phase (jets/s) | of the LRP pass alone | peak RSS (MB) | RSS / smallest | "
          "wall time (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, files, rate, rss, wall in rows:
        print(f"| {size} | {files} | {rate:.0f} | {rate / alone:.0%} | {rss:.0f} | {rss / rows[0][3]:.2f} | "
              f"{wall:.0f} |")
    print(f"\nthe same command on {len(workers_files) * per_file} jets in {len(workers_files)} files:\n")
    print("| run | explain phase (jets/s) | speed-up | jets per hour | wall time (s) |")
    print("|---|---:|---:|---:|---:|")
    for workers, rate, wall in scaling:
        label = "in-process" if not workers else f"--workers {workers} ({default_threads(workers)} threads each)"
        print(f"| {label} | {rate:.0f} | {rate / scaling[0][1]:.2f} | {3600 * rate:.3g} | {wall:.0f} |")
    return 0


def attribute(method: str, files: list[Path], options: list[str]) -> tuple[float, float, float]:
    """``hin-captum attribute`` in a fresh process: its explain phase in jets/s, peak RSS (MB) and wall time (s)."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-c", MEASURE, sys.executable, "-m", "hin_captum", "attribute", "--method", method,
                   "--data", *map(str, files), "--out", out, *options]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    jets, _, seconds = RATE.search(result.stdout).groups()
    rss = int(re.search(r"peak_rss_kb (\d+)", result.stderr).group(1)) / 1024
    return int(jets) / float(seconds), rss, wall


if __name__ == "__main__":
    run(main)
