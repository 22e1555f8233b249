"""Options that several commands share: the LRP options, and where a run executes (in-process or on Dask).

Every option defaults to None ("not given"), so that the run's YAML config holds the
defaults (:meth:`hin_captum.pipeline.settings.RunSettings.load`).
"""
from __future__ import annotations

import argparse
from typing import Any

from ..lrp import COMPOSITES, PRECISIONS
from ..lrp.attention import ATTENTION_RULES


def add_lrp_arguments(parser: argparse.ArgumentParser) -> None:
    """``--epsilon``, ``--composite``, ``--rules``, ``--precision`` and ``--attention``: the LRP methods' options."""
    parser.add_argument("--epsilon", type=float, help="LRP epsilon")
    parser.add_argument("--composite", choices=sorted(COMPOSITES), help="LRP composite")
    parser.add_argument("--rules", action="append", metavar="PATTERN=RULE[,...]",
                        help="LRP rule overrides by module name pattern, e.g. 'bn=pass,*global_mlp.0=gamma:0.5'")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="LRP matrix products in float32 (default), tf32 (NVIDIA GPUs) or bfloat16")
    parser.add_argument("--attention", choices=ATTENTION_RULES,
                        help="LRP rules of attention, normalisation and gates: attnlrp (AttnLRP, default) or cp "
                             "(CP-LRP: attention probabilities and gates held constant)")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers``, ``--scheduler`` and ``--threads``: where the run executes."""
    parser.add_argument("--workers", type=int, metavar="N",
                        help="start a local Dask cluster of N worker processes and explain on it (default: in-process)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="explain on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--threads", type=int, metavar="T",
                        help="PyTorch threads of this process, or of each worker (default: PyTorch's choice "
                             "in-process; cores / N with --workers)")


def overrides(args: argparse.Namespace, *leave_out: str) -> dict[str, Any]:
    """The options given on the command line (not None), by name, except ``leave_out``."""
    return {key: value for key, value in vars(args).items() if value is not None and key not in leave_out
            and key != "command"}
