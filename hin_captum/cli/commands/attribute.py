"""Explain a jet tagger on H->bb ntuples: one friend file per input file, a global summary, and figures.

With no argument: the pretrained toy model on the bundled toy jets (configs/attribute.yml).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from tqdm import tqdm

import torch

from ...config import load_config
from ...data.schema import CMS_HBB
from ...lrp import REFERENCES
from ...methods import METHODS
from ...pipeline import FileStatus, Worker, dask_client, default_threads, explain_sample
from ...pipeline.settings import DATA_REFERENCE, RunSettings
from ...plots.jets import plot_jets, signal_of
from ...plots.summary import plot_summary
from ...util import atomic_path, writing_into
from ..options import add_executor_arguments, add_lrp_arguments, overrides

NAME = "attribute"
HELP = "explain a jet tagger on ROOT ntuples: a friend file per input file, a summary and figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = load_config("attribute")  # --config may name another; the help shows these
    parser.add_argument("--config", default="attribute", help="config name or a YAML path (default: %(default)s)")
    parser.add_argument("--method", help=f"one of {', '.join(sorted(METHODS))}, or several separated by commas "
                                         f"(default: {defaults['method']})")
    parser.add_argument("--model", help=f"checkpoint, or with --network weaver's state dict (*_best_epoch_state.pt) "
                                        f"(default: the bundled {defaults['model']})")
    parser.add_argument("--network", metavar="NET.py",
                        help="a weaver network file (get_model(data_config, **kwargs)), explained with --data-config "
                             "and --model, its inputs built by weaver from the ntuples")
    parser.add_argument("--data-config", metavar="DATA.yaml", help="the weaver data config the network was trained "
                                                                   "with")
    parser.add_argument("--network-option", nargs=2, action="append", metavar=("KEY", "VALUE"),
                        help="weaver's network options, passed to get_model (values are Python literals)")
    parser.add_argument("--constant-groups", metavar="GROUP[,...]",
                        help="weaver input groups that carry no relevance (default: *_mask and *_vectors)")
    parser.add_argument("--data", nargs="+", help="ROOT files (TTree or RNTuple) or globs (default: the bundled "
                                                  f"{' '.join(defaults['data'])})")
    parser.add_argument("--tree", help="tree in the ROOT files (default: that of configs/definitions.yml)")
    parser.add_argument("--target", help=f"class to explain ({', '.join(CMS_HBB.target_choices()[:-1])}, or a weaver "
                                         "model's classes), or predicted: each jet's predicted class "
                                         f"(default: {defaults['target']})")
    add_lrp_arguments(parser)
    parser.add_argument("--reference", choices=[*REFERENCES, DATA_REFERENCE],
                        help="point relevance is measured from: auto (the input BatchNorm's running mean: the "
                             "average track the model was trained around), zero, or data (the mean track of the "
                             "sample, one more pass over the inputs) (default: auto)")
    parser.add_argument("--batch-size", type=int, help=f"jets per batch (default: {defaults['batch_size']})")
    parser.add_argument("--max-edges", help="at most this many edges n(n-1) in a batch, so that big jets make "
                                            f"smaller batches; none: no bound (default: {defaults['max_edges']})")
    parser.add_argument("--chunk-size", help="input read per chunk: entries (10000) or a size (20 MB) "
                                             f"(default: {defaults['chunk_size']})")
    parser.add_argument("--max-jets", type=int,
                        help=f"explain at most this many usable jets (default: {defaults['max_jets'] or 'all'})")
    parser.add_argument("--out", type=Path, help="output folder; each method writes <out>/<method>/ "
                                                 f"(default: {defaults['output']})")
    parser.add_argument("--overwrite", action="store_true", default=None,
                        help="redo input files whose friend file is complete (default: skip them)")
    parser.add_argument("--torch", dest="torch_copy", action="store_true", default=None,
                        help="also write a PyTorch copy per input file")
    parser.add_argument("--plot", type=int, metavar="N", help="per-jet figures for the N jets most confidently Hbb; "
                                                              "0: none; the summary's figures are always drawn "
                                                              f"(default: {defaults['plots']['jets']})")
    parser.add_argument("--pdf", action="store_true", default=None, help="write every figure as PDF as well as PNG")
    parser.add_argument("--device", choices=["cpu", "cuda"], help=f"(default: {defaults['device']})")
    parser.add_argument("--report", type=Path, metavar="FILE",
                        help="also write what the run did (per method: jets, seconds, files and their status) as JSON")
    add_executor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    threads = args.threads if args.threads is not None else default_threads(args.workers)
    settings = RunSettings.load(
        args.config, **overrides(args, "config", "workers", "scheduler", "threads", "report"), threads=threads,
        command=shlex.join(sys.argv))
    if threads is not None:
        torch.set_num_threads(threads)
    worker = Worker(settings)
    report = worker.reader.report
    print(f"input: {len(worker.reader.files)} file(s), {sum(report.entries)} entries", flush=True)

    bars: list[tqdm] = []

    def progress(method: str, total: int):
        bars.append(tqdm(total=total, desc=method, unit="entry", unit_scale=True, leave=False))
        return bars[-1].update

    try:
        with dask_client(args.workers, args.scheduler, settings.threads) as client:
            runs = explain_sample(settings, client, progress, worker)
    finally:
        for bar in bars:
            bar.close()
    for result in runs:
        folder = settings.out / result.method
        figures = []
        if result.summary is not None:
            plots = settings.plots
            with writing_into(folder):
                figures += plot_summary(result.summary, folder, plots.formats, plots.top_features)
                figures += plot_jets(worker.most_confident(result, plots.jets, signal_of(worker.classes)), folder,
                                     plots)
        written = [f for f in result.files if f.status in (FileStatus.WRITTEN, FileStatus.PARTIAL)]
        skipped = len([f for f in result.files if f.status is FileStatus.SKIPPED])
        rate = f" ({result.jets_explained / result.seconds:.3g} jets/s)" if result.seconds > 0 and written else ""
        print(f"{result.method}: explained {result.jets_explained} jets of {len(written)} file(s) in "
              f"{result.seconds:.2f} s{rate}"
              + (f"; skipped {skipped} complete file(s) of an identical earlier run (--overwrite redoes them)"
                 if skipped else "")
              + f"; wrote {folder}/ (friend files, summary.root, {len(figures)} figures)", flush=True)
        for failed in result.failed:
            print(f"{result.method}: no friend file for {failed.input}: {failed.reason}; the other files are complete, "
                  "rerun to retry it", file=sys.stderr, flush=True)
        if result.absorbed == result.absorbed:  # not NaN: LRP
            print(f"{result.method}: biases and epsilon kept {100 * result.absorbed:.1f}% of the explained logits "
                  "(sum |absorbed| / sum |logit| over the jets; per jet in rel_absorbed)", flush=True)
    if args.report is not None:
        with writing_into(args.report.parent), atomic_path(args.report) as temporary:
            temporary.write_text(json.dumps({"command": settings.command, "runs": [r.report() for r in runs]},
                                            indent=1, default=str))
    read = runs[0].read
    dropped = read.drops() or "none"
    unread = sum(report.entries) - read.jets_read
    print(f"explained {read.jets_kept} jets, skipped {read.jets_read - read.jets_kept} ({dropped})"
          + (f"; {unread} entries not read (--max-jets)" if unread else "")
          + f"; {time.perf_counter() - started:.1f} s in all")
    return 1 if any(result.failed for result in runs) else 0

