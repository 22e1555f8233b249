"""Explain a jet tagger on H->bb ntuples: one friend file per input file, a global summary, and figures.

With no argument: the pretrained toy model on the bundled toy jets (configs/attribute.yml).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..config import bundled, load_config
from ..distributed import dask_client, default_threads
from ..errors import InputError
from ..lrp import COMPOSITES, REFERENCES
from ..lrp.engine import PRECISIONS
from ..methods import METHODS
from ..output import target_choices, target_class
from ..output.options import check_model_inputs, method_options, parse_methods, parse_rules, torch_device
from ..pipeline import RunSettings, SampleExplainer
from ..plots.jets import SIGNAL, PlotSettings, plot_jets
from ..plots.summary import plot_summary

NAME = "attribute"
HELP = "explain a jet tagger on ROOT ntuples: a friend file per input file, a summary and figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = load_config("attribute")  # --config may name another; the help shows these
    parser.add_argument("--config", default="attribute", help="config name or a YAML path (default: %(default)s)")
    parser.add_argument("--method", help=f"one of {', '.join(sorted(METHODS))}, or several separated by commas "
                                         f"(default: {defaults['method']})")
    parser.add_argument("--model", help=f"checkpoint (default: the bundled {defaults['model']})")
    parser.add_argument("--data", nargs="+", help="ROOT files (TTree or RNTuple) or globs (default: the bundled "
                                                  f"{' '.join(defaults['data'])})")
    parser.add_argument("--tree", help="tree in the ROOT files (default: that of configs/definitions.yml)")
    parser.add_argument("--target", choices=target_choices(),
                        help=f"class to explain, or each jet's predicted class (default: {defaults['target']})")
    parser.add_argument("--epsilon", type=float, help="LRP epsilon")
    parser.add_argument("--composite", choices=sorted(COMPOSITES), help="LRP composite")
    parser.add_argument("--rules", action="append", default=[], metavar="PATTERN=RULE[,...]",
                        help="LRP rule overrides by module name pattern, e.g. 'bn=pass,*global_mlp.0=gamma:0.5'")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="LRP matrix products in float32 (default), tf32 (NVIDIA GPUs) or bfloat16")
    parser.add_argument("--reference", choices=[*REFERENCES, "data"],
                        help="point relevance is measured from: auto (the input BatchNorm's running mean: the "
                             "average track the model was trained around), zero, or data (the mean track of the "
                             "sample, one more pass over the inputs) (default: auto)")
    parser.add_argument("--batch-size", type=int, help=f"jets per batch (default: {defaults['batch_size']})")
    parser.add_argument("--chunk-size", help="input read per chunk: entries (10000) or a size (20 MB) "
                                             f"(default: {defaults['chunk_size']})")
    parser.add_argument("--max-jets", type=int,
                        help=f"explain at most this many usable jets (default: {defaults['max_jets'] or 'all'})")
    parser.add_argument("--out", type=Path, help="output folder; each method writes <out>/<method>/ "
                                                 f"(default: {defaults['output']})")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo input files whose friend file is complete (default: skip them)")
    parser.add_argument("--torch", action="store_true", help="also write a PyTorch copy per input file")
    parser.add_argument("--plot", type=int, metavar="N", help="per-jet figures for the N jets most confidently Hbb; "
                                                              "0: none; the summary's figures are always drawn "
                                                              f"(default: {defaults['plots']['jets']})")
    parser.add_argument("--pdf", action="store_true", help="write every figure as PDF as well as PNG")
    parser.add_argument("--device", choices=["cpu", "cuda"], help=f"(default: {defaults['device']})")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="start a local Dask cluster of N worker processes and explain on it (default: in-process)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="explain on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--threads", type=int, metavar="T",
                        help="PyTorch threads of this process, or of each worker (default: PyTorch's choice "
                             "in-process; cores / N with --workers)")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config = load_config(args.config)

    def option(value: Any, key: str) -> Any:
        """The command line's value, else the config's."""
        return value if value is not None else config[key]

    methods = parse_methods(option(args.method, "method"))
    options = method_options(methods, config.get("methods") or {},
                             dict(epsilon=args.epsilon, composite=args.composite, rules=parse_rules(args.rules),
                                  precision=args.precision),
                             reference=option(args.reference, "reference"))
    target_name = option(args.target, "target")
    out = Path(option(args.out, "output"))
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: give a folder")
    plots = PlotSettings.from_config(config["plots"], jets=args.plot, pdf=args.pdf)
    batch_size = int(option(args.batch_size, "batch_size"))
    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, got {batch_size}")
    settings = RunSettings(
        model=str(args.model or bundled(config["model"])),
        data=tuple(args.data or [str(bundled(path)) for path in config["data"]]),
        methods=options,
        out=out,
        target=target_class(target_name),
        tree=args.tree or config["tree"],
        batch_size=batch_size,
        step_size=_chunk_size(option(args.chunk_size, "chunk_size")),
        max_jets=option(args.max_jets, "max_jets"),
        device=str(torch_device(option(args.device, "device"))),
        output_tree=config["output_tree"],
        basket_entries=int(config["basket_entries"]),
        overwrite=args.overwrite,
        torch_copy=args.torch,
        seed=int(config["seed"]),
        command=shlex.join(sys.argv),
        coordinates=dict(config["plots"]["coordinates"]),
        threads=args.threads if args.threads is not None else default_threads(args.workers),
    )
    sample = SampleExplainer(settings)
    check_model_inputs(sample.model, settings.model)
    report = sample.reader.report
    print(f"input: {len(sample.reader.files)} file(s), {sum(report.entries)} entries", flush=True)

    bars: list[tqdm] = []

    def progress(method: str, total: int):
        bars.append(tqdm(total=total, desc=method, unit="entry", unit_scale=True, leave=False))
        return bars[-1].update

    try:
        with dask_client(args.workers, args.scheduler, settings.threads) as client:
            runs = sample.run(progress, client, retries=int(config["retries"]))
    finally:
        for bar in bars:
            bar.close()
    for result in runs:
        folder = out / result.method
        figures = []
        if result.summary is not None:
            figures += plot_summary(result.summary, folder, plots.formats, plots.top_features)
            figures += plot_jets(sample.most_confident(result, plots.jets, SIGNAL), folder, plots)
        written = [f for f in result.files if f.status in ("written", "partial")]
        skipped = len([f for f in result.files if f.status == "skipped"])
        rate = f" ({result.jets_explained / result.seconds:.3g} jets/s)" if result.seconds > 0 and written else ""
        print(f"{result.method}: explained {result.jets_explained} jets of {len(written)} file(s) in "
              f"{result.seconds:.2f} s{rate}"
              + (f"; skipped {skipped} complete file(s) of an identical earlier run (--overwrite redoes them)"
                 if skipped else "")
              + f"; wrote {folder}/ (friend files, summary.root, {len(figures)} figures)", flush=True)
        for failed in result.failed:
            print(f"{result.method}: no friend file for {failed.input}: its units kept failing "
                  f"({failed.status.removeprefix('failed: ')}); rerun to retry them", file=sys.stderr, flush=True)
        if result.absorbed == result.absorbed:  # not NaN: LRP
            print(f"{result.method}: biases and epsilon kept {100 * result.absorbed:.1f}% of the explained logits "
                  "(sum |absorbed| / sum |logit| over the jets; per jet in rel_absorbed)", flush=True)
    read = runs[0].read
    dropped = read.drops() or "none"
    unread = sum(report.entries) - read.jets_read
    print(f"explained {read.jets_kept} jets, skipped {read.jets_read - read.jets_kept} ({dropped})"
          + (f"; {unread} entries not read (--max-jets)" if unread else "")
          + f"; {time.perf_counter() - started:.1f} s in all")
    return 1 if any(result.failed for result in runs) else 0


def _chunk_size(value: int | str) -> int | str:
    """Entries per chunk (a number) or a size such as ``20 MB``."""
    text = str(value).strip()
    return int(text) if text.isdigit() else text
