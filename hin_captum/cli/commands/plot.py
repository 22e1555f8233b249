"""Draw the figures of a run's global summary again, from its summary.root, without explaining."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...config import load_config
from ...util import InputError
from ...output.summary import RelevanceSummary
from ...plots.summary import plot_summary

NAME = "plot"
HELP = "draw the figures of a run's summary.root again (no explaining)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary", type=Path, help="a summary.root written by hin-captum attribute")
    parser.add_argument("--out", type=Path, help="folder for the figures (default: the summary's folder)")
    parser.add_argument("--pdf", action="store_true", help="write every figure as PDF as well as PNG")


def run(args: argparse.Namespace) -> int:
    if not args.summary.is_file():
        raise InputError(f"no such file: {args.summary}")
    summary = RelevanceSummary.read(args.summary)
    top = int(load_config("attribute")["plots"]["top_features"])
    written = plot_summary(summary, args.out or args.summary.parent, ("png", "pdf") if args.pdf else ("png",), top)
    print(f"wrote {len(written)} figures of {summary.jets} jets ({summary.method}) in {args.out or args.summary.parent}")
    return 0
