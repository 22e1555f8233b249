"""Make on-manifold prototypes: real jets moved until the model is sure they are the target class, written as an
ntuple of the input's schema, explained and drawn.

With no argument: the pretrained toy model on the bundled toy jets (configs/prototype.yml).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ...config import load_config

NAME = "prototype"
HELP = "make the most target-like jets the model knows, on the data's manifold: an ntuple, its LRP and figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = load_config("prototype")["command"]  # --config may name another; the help shows these
    parser.add_argument("--config", default="prototype", help="config name or a YAML path (default: %(default)s)")
    parser.add_argument("--model", help=f"checkpoint (default: the bundled {defaults['model']})")
    parser.add_argument("--data", nargs="+", help="ROOT files (TTree or RNTuple) or globs: the real jets (default: the "
                                                  f"bundled {' '.join(defaults['data'])})")
    parser.add_argument("--tree", help="tree in the ROOT files (default: that of configs/definitions.yml)")
    parser.add_argument("--target", help=f"class to maximise: hbb or qcd (default: {defaults['target']})")
    parser.add_argument("--n", type=int, help="prototypes, from the jets the model scores lowest for the target "
                                              f"(default: {defaults['n']})")
    parser.add_argument("--seed", type=int, help=f"(default: {defaults['seed']})")
    parser.add_argument("--max-jets", type=int, help="real jets read: the manifold and the jets to start from "
                                                     f"(default: {defaults['max_jets']})")
    parser.add_argument("--out", type=Path, help=f"output folder (default: {defaults['output']})")
    parser.add_argument("--plot", type=int, metavar="N", help="figures for the first N prototypes; 0: only the "
                                                              f"summary figure (default: {defaults['plot']})")
    parser.add_argument("--pdf", action="store_true", default=None, help="write every figure as PDF as well as PNG")
    parser.add_argument("--device", choices=["cpu", "cuda"], help=f"(default: {defaults['device']})")
    parser.add_argument("--threads", type=int, metavar="T", help="PyTorch threads (default: PyTorch's choice)")


def run(args: argparse.Namespace) -> int:
    from ...prototypes.run import CONFIDENT, PrototypeSettings, make_prototypes

    settings = PrototypeSettings.load(args.config, **{key: value for key, value in vars(args).items()
                                                      if key not in ("config", "threads", "command")})
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    made = make_prototypes(settings)
    target = settings.schema.target_name(settings.target)
    print(f"prototypes: {made.confident} of {settings.n} reach p({target}) >= {CONFIDENT} "
          f"(lowest {float(made.prototypes.scores.min()):.4f}); from jets at p({target}) "
          f"{float(made.prototypes.start_scores.min()):.2g}-{float(made.prototypes.start_scores.max()):.2g}; wrote "
          f"{made.root_file}, its LRP friend file {made.friend_file} and {len(made.figures)} figures")
    return 0
