"""Write a ROOT file of toy H->bb and QCD jets in the CMS ntuple schema.

Defaults come from configs/toy_data.yml. The file appears atomically: it is written
to a temporary file in the target folder and renamed into place when complete.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hin_captum.cli import atomic_path, run
from hin_captum.config import load_config
from hin_captum.data import write_toy_root


def main(argv: list[str] | None = None) -> int:
    defaults = load_config("toy_data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="ROOT file to write")
    parser.add_argument("--jets", type=int, default=defaults["n_jets"], help="number of jets (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults["seed"], help="random seed (default: %(default)s)")
    parser.add_argument("--signal-fraction", type=float, default=defaults["signal_fraction"],
                        help="share of H->bb jets (default: %(default)s)")
    args = parser.parse_args(argv)
    with atomic_path(args.out) as temporary:
        write_toy_root(temporary, args.jets, args.seed, args.signal_fraction)
    print(f"wrote {args.jets} toy jets to {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
