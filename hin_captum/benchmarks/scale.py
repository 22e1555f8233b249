"""The whole-sample pipeline at scale: jets/s and peak memory at growing sizes, and on Dask workers.

Each size runs ``hin-captum attribute`` with its default options (batch size, chunk
size, figures) in a fresh process on toy jets spread over several files, and reads
the run's own report (``--report``): the explain phase in jets/s, with the peak
resident memory of that process. The LRP pass alone is timed in this process on jets
already in memory, at the same batch size. Then the same command runs with
``--workers N`` (a local Dask cluster) on the same files, against the in-process run,
and on high-multiplicity jets at several edge budgets (``--max-edges``).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..config import bundled, load_config
from ..data import RootJetReader, write_toy_root
from ..data.graphs import jet_batch
from ..methods import METHODS
from ..models import load_model
from ..pipeline.executors import default_threads
from .tables import markdown_table
from .timing import best_times

MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
           "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
           "sys.exit(code)")
"""A parent process that runs the command and reports its peak resident memory (that of its child alone)."""


@dataclass(frozen=True)
class Measured:
    """One ``hin-captum attribute`` run: its explain phase and what it cost."""

    jets: int
    seconds: float
    peak_rss_mb: float
    wall_seconds: float

    @property
    def rate(self) -> float:
        return self.jets / self.seconds


def toy_files(folder: Path, n_files: int, jets_per_file: int, seed: int) -> list[Path]:
    """The toy files of the benchmark, written once."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"toy_{seed + k}.root" for k in range(n_files)]
    missing = [path for path in paths if not path.exists()]
    for path in tqdm(missing, desc="toy files", unit="file", disable=not missing):
        write_toy_root(path, jets_per_file, seed=int(path.stem.split("_")[1]))
    return paths


def big_jet_file(folder: Path, config: Mapping[str, Any]) -> Path:
    """Toy jets of ``config["tracks"]`` tracks each (uniform), written once: the edge budget's test case."""
    low, high = (int(value) for value in config["tracks"])
    path = folder / f"big_{config['jets']}_{low}_{high}_{config['seed']}.root"
    if not path.exists():
        toy = load_config("toy_data")
        tracks = dict(toy["tracks"], count_min=low, count_max=high, count_mean={"hbb": (low + high) / 2,
                                                                                 "qcd": (low + high) / 2},
                      count_sd=float(high - low))
        write_toy_root(path, int(config["jets"]), seed=int(config["seed"]), config=dict(toy, tracks=tracks))
    return path


def lrp_pass(paths: Sequence[Path], method: str, batch_size: int, batches: int) -> float:
    """Jets per second of the LRP pass alone, on batches already built and in memory."""
    model = load_model(bundled(load_config("attribute")["model"]))
    chunk = next(RootJetReader(paths[0], step_size=batch_size * batches).chunks(0))
    starts = [0, *torch.cumsum(torch.as_tensor(chunk.tracks_per_jet), 0).tolist()]
    full = min(batches, len(chunk.tracks_per_jet) // batch_size)  # chunks are cut equal, a little under the step
    built = [jet_batch(chunk.x[starts[k]:starts[k + batch_size]], chunk.tracks_per_jet[k:k + batch_size])
             for k in range(0, batch_size * full, batch_size)]
    explainer = METHODS[method](model)
    (seconds,) = best_times([lambda: [explainer.explain(batch, 1) for batch in built]], 3)
    return batch_size * len(built) / seconds


def attribute(method: str, files: Sequence[Path], options: Sequence[str]) -> Measured:
    """``hin-captum attribute`` in a fresh process, measured from its report and its peak memory."""
    with tempfile.TemporaryDirectory() as out:
        report = Path(out) / "report.json"
        command = [sys.executable, "-c", MEASURE, sys.executable, "-m", "hin_captum", "attribute", "--method", method,
                   "--data", *map(str, files), "--out", out, "--report", str(report), *options]
        begin = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - begin
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
        (run,) = json.loads(report.read_text())["runs"]
    rss = next(int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("peak_rss_kb")) / 1024
    return Measured(run["jets_explained"], run["seconds"], rss, wall)


def scale(config: Mapping[str, Any], sizes: Sequence[int] | None = None) -> str:
    """The benchmark's report (markdown) for a ``configs/bench_scale.yml``-like ``config``."""
    sizes = list(sizes or config["sizes"])
    per_file = int(config["jets_per_file"])
    paths = toy_files(Path(config["data_dir"]), -(-max(sizes) // per_file), per_file, int(config["seed"]))
    batch_size = int(load_config("attribute")["batch_size"])
    alone = lrp_pass(paths, config["method"], batch_size, int(config["lrp_pass_batches"]))
    rows = []
    for size in sizes:
        files = paths[: -(-size // per_file)]
        measured = attribute(config["method"], files, ["--max-jets", str(size)])
        rows.append((size, len(files), measured))
        print(f"{size} jets: {measured.rate:.0f} jets/s, peak RSS {measured.peak_rss_mb:.0f} MB", flush=True)
    workers_files = paths[: -(-int(config["workers_jets"]) // per_file)]
    scaling = []
    for workers in [0, *config["workers"]]:
        measured = attribute(config["method"], workers_files, ["--workers", str(workers)] if workers else [])
        scaling.append((workers, measured))
        print(f"{'in-process' if not workers else f'{workers} worker(s)'}: {measured.rate:.0f} jets/s", flush=True)

    big = big_jet_file(Path(config["data_dir"]), config["big_jets"])
    budgets = []
    for budget in config["big_jets"]["max_edges"]:
        measured = attribute(config["method"], [big], ["--max-edges", "none" if budget is None else str(budget)])
        budgets.append((budget, measured))
        print(f"big jets, --max-edges {budget}: {measured.rate:.1f} jets/s, peak RSS {measured.peak_rss_mb:.0f} MB",
              flush=True)

    smallest = rows[0][2].peak_rss_mb
    sizes_table = markdown_table([
        {"jets": size, "files": files, "explain phase (jets/s)": measured.rate,
         "of the LRP pass alone": f"{measured.rate / alone:.0%}", "peak RSS (MB)": round(measured.peak_rss_mb),
         "RSS / smallest": measured.peak_rss_mb / smallest, "wall time (s)": round(measured.wall_seconds)}
        for size, files, measured in rows])
    in_process = scaling[0][1].rate
    workers_table = markdown_table([
        {"run": "in-process" if not workers else f"--workers {workers} ({default_threads(workers)} threads each)",
         "explain phase (jets/s)": round(measured.rate), "speed-up": measured.rate / in_process,
         "jets per hour": 3600 * measured.rate, "wall time (s)": round(measured.wall_seconds)}
        for workers, measured in scaling])
    default_budget = load_config("attribute")["max_edges"]
    budget_table = markdown_table([
        {"--max-edges": "none" if budget is None else f"{budget}{' (default)' if budget == default_budget else ''}",
         "explain phase (jets/s)": round(measured.rate, 1), "peak RSS (MB)": round(measured.peak_rss_mb),
         "wall time (s)": round(measured.wall_seconds)}
        for budget, measured in budgets])
    low, high = config["big_jets"]["tracks"]
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch size {batch_size}; "
            f"LRP pass alone on jets in memory: {alone:.0f} jets/s\n\n{sizes_table}\n\n"
            f"peak RSS at {rows[-1][0]} jets / at {rows[0][0]}: {rows[-1][2].peak_rss_mb / smallest:.2f}x\n\n"
            f"the same command on {len(workers_files) * per_file} jets in {len(workers_files)} files "
            f"(Dask / in-process: {scaling[-1][1].rate / in_process:.2f}x at {scaling[-1][0]} workers):\n\n"
            f"{workers_table}\n\n"
            f"{config['big_jets']['jets']} jets of {low}-{high} tracks (batch size {batch_size}):\n\n{budget_table}")
