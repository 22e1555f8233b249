"""Explain a jet tagger on H->bb ntuples: relevance as a ROOT friend tree of the input and a PyTorch copy, plus plots.

With no argument: the pretrained toy model on the bundled toy jets (configs/attribute.yml).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import hin_captum
from hin_captum.cli import run
from hin_captum.config import CONFIG_DIR, load_config
from hin_captum.data import read_root
from hin_captum.errors import InputError
from hin_captum.lrp import COMPOSITES, REFERENCES, track_mean
from hin_captum.methods import METHODS
from hin_captum.output import explain_jets, target_choices, target_class, write_relevance
from hin_captum.output.options import (
    check_model_inputs, method_options, parse_methods, parse_rules, torch_device,
)
from hin_captum.plots.jets import PlotSettings, plot_jets

PROJECT = CONFIG_DIR.parent


def main(argv: list[str] | None = None) -> int:
    defaults = load_config("attribute")  # --config may name another; the help shows these
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="attribute",
                        help="config name in configs/ or a YAML path (default: %(default)s)")
    parser.add_argument("--method", help=f"one of {', '.join(sorted(METHODS))}, or several separated by commas "
                                         f"(default: {defaults['method']})")
    parser.add_argument("--model", help=f"checkpoint (default: {defaults['model']})")
    parser.add_argument("--data", nargs="+", help=f"ROOT files or globs (default: {' '.join(defaults['data'])})")
    parser.add_argument("--tree", help="tree in the ROOT files (default: that of configs/definitions.yml)")
    parser.add_argument("--target", choices=target_choices(),
                        help=f"class to explain, or each jet's predicted class (default: {defaults['target']})")
    parser.add_argument("--epsilon", type=float, help="LRP epsilon")
    parser.add_argument("--composite", choices=sorted(COMPOSITES), help="LRP rule of the hidden layers")
    parser.add_argument("--rules", action="append", default=[], metavar="PATTERN=RULE[,...]",
                        help="LRP rule overrides by module name pattern, e.g. 'bn=pass,*global_mlp.0=gamma:0.5'")
    parser.add_argument("--reference", choices=[*REFERENCES, "data"],
                        help="point relevance is measured from: auto (the input BatchNorm's running mean: the "
                             "average track the model was trained around), zero, or data (the mean track of the jets "
                             f"read) (default: {defaults['reference'] or 'auto'})")
    parser.add_argument("--batch-size", type=int, help=f"jets per batch (default: {defaults['batch_size']})")
    parser.add_argument("--max-jets", type=int,
                        help=f"explain at most this many usable jets (default: {defaults['max_jets'] or 'all'})")
    parser.add_argument("--out", type=Path, help=f"output folder; each method writes <out>/<method>/ "
                                                 f"(default: {defaults['output']})")
    parser.add_argument("--plot", type=int, metavar="N", help="plots for the N jets most confidently Hbb; "
                                                              f"0: no plots (default: {defaults['plots']['jets']})")
    parser.add_argument("--pdf", action="store_true", help="write every plot as PDF as well as PNG")
    parser.add_argument("--device", choices=["cpu", "cuda"], help=f"(default: {defaults['device']})")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    config = load_config(args.config)

    def option(value: Any, key: str) -> Any:
        """The command line's value, else the config's."""
        return value if value is not None else config[key]

    methods = parse_methods(option(args.method, "method"))
    reference = option(args.reference, "reference")
    options = method_options(methods, config.get("methods") or {},
                             dict(epsilon=args.epsilon, composite=args.composite, rules=parse_rules(args.rules)),
                             reference=reference)
    target_name = option(args.target, "target")
    target = target_class(target_name)
    device = torch_device(option(args.device, "device"))
    out = option(args.out, "output")
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"--out {out} is a file: give a folder")
    settings = PlotSettings.from_config(config["plots"], jets=args.plot, pdf=args.pdf)
    model_path = str(args.model or PROJECT / config["model"])
    model = hin_captum.load_model(model_path, map_location=device)
    check_model_inputs(model, model_path)
    tree = args.tree or config["tree"] or load_config("definitions")["tree"]
    data = args.data or [str(PROJECT / path) for path in config["data"]]
    jets = read_root(data, tree, max_jets=option(args.max_jets, "max_jets"))
    if reference == "data":
        mean_track = track_mean(jets.jets)
        for name in methods:
            if options[name].get("reference") == "data":
                options[name]["reference"] = mean_track
    explainers = {name: METHODS[name](model, **options[name]) for name in methods}  # bad options fail here
    report = jets.report
    entries = report.entries
    unread = sum(entries) - report.jets_read
    print(f"jets: {report.summary()}" + (f"; {unread} entries not read (--max-jets)" if unread else ""),
          flush=True)

    for name, explainer in explainers.items():
        torch.manual_seed(config["seed"])
        explaining = time.perf_counter()
        with tqdm(total=len(jets), desc=name, unit="jet") as bar:
            table = explain_jets(explainer, jets.jets, option(args.batch_size, "batch_size"), target, device,
                                 bar.update)
        seconds = time.perf_counter() - explaining
        folder = Path(out) / name
        metadata = dict(command=shlex.join(["python", "scripts/attribute.py", *sys.argv[1:]]), model=model_path,
                        files=report.files, tree=tree, target=target_name,
                        options=options[name], read=report.summary())
        written = write_relevance(folder, table, entries, report.jets_read, tree=config["output_tree"],
                                  basket_entries=config["basket_entries"], metadata=metadata)
        plots = plot_jets(table, folder, settings)
        print(f"{name}: explained {table.num_jets} jets in {seconds:.2f} s ({table.num_jets / seconds:.3g} jets/s); "
              f"wrote {', '.join(map(str, written))} and {len(plots)} plots in {folder}", flush=True)
        if table.absorbed is not None:
            print(f"{name}: biases and epsilon kept {100 * table.absorbed_fraction():.1f}% of the explained logits "
                  "(sum |absorbed| / sum |logit| over the jets; per jet in rel_absorbed)", flush=True)
    skipped = ", ".join(f"{n} {reason}" for reason, n in report.dropped.most_common()) or "none"
    print(f"explained {len(jets)} jets, skipped {report.jets_read - report.jets_kept} ({skipped}); "
          f"{time.perf_counter() - started:.1f} s in all")
    return 0


if __name__ == "__main__":
    run(main)
