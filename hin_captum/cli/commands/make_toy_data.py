"""Write a ROOT file of toy H->bb and QCD jets in the CMS ntuple schema (defaults: configs/toy_data.yml)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...util import atomic_path
from ...config import load_config
from ...data import write_toy_root

NAME = "make-toy-data"
HELP = "write toy H->bb and QCD jets as a ROOT file in the CMS ntuple schema"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = load_config("toy_data")
    parser.add_argument("--out", type=Path, required=True, help="ROOT file to write")
    parser.add_argument("--jets", type=int, default=defaults["n_jets"], help="number of jets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults["seed"], help="random seed (default: %(default)s)")
    parser.add_argument("--signal-fraction", type=float, default=defaults["signal_fraction"],
                        help="share of H->bb jets (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """The file appears atomically: written to a temporary file in the target folder, renamed when complete."""
    with atomic_path(args.out) as temporary:
        write_toy_root(temporary, args.jets, args.seed, args.signal_fraction)
    print(f"wrote {args.jets} toy jets to {args.out}")
    return 0
