"""Write a ROOT file of toy H->bb and QCD jets in the CMS ntuple schema.

Defaults come from configs/toy_data.yml. The file appears atomically: it is written
to a temporary file in the target folder and renamed into place when complete.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hin_captum.config import load_config
from hin_captum.data import write_toy_root
from hin_captum.errors import InputError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = load_config("toy_data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="ROOT file to write")
    parser.add_argument("--jets", type=int, default=defaults["n_jets"], help="number of jets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults["seed"], help="random seed (default: %(default)s)")
    parser.add_argument(
        "--signal-fraction", type=float, default=defaults["signal_fraction"],
        help="share of H->bb jets (default: %(default)s)",
    )
    return parser.parse_args(argv)


def write_atomically(out: Path, n_jets: int, seed: int, signal_fraction: float) -> None:
    """Write to a temporary file beside ``out``, then rename it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        write_toy_root(temporary, n_jets, seed, signal_fraction)
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        write_atomically(args.out, args.jets, args.seed, args.signal_fraction)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.jets} toy jets to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
