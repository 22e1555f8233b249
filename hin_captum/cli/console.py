"""``hin-captum``: one console command for every script, with subcommands.

    hin-captum attribute --data "ntuples/*.root" --method lrp
    hin-captum prototype --n 100 --out prototypes
    hin-captum benchmark --parts composites
    hin-captum plot attribution/lrp/summary.root
    hin-captum train --config train_toy
    hin-captum make-toy-data --out toy.root

Bad input ends with one line on stderr and exit code 2 (:func:`run`).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..util import InputError, keep_freed_memory
from .commands import COMMANDS


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hin-captum", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_arguments(subcommands.add_parser(name, help=module.HELP, description=module.HELP))
    return parser.parse_args(argv)


def dispatch(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand it names."""
    args = parse(argv)
    return COMMANDS[args.command].run(args)


def command(name: str) -> Callable[[list[str] | None], int]:
    """One subcommand as a ``main(argv)`` of its own (what ``scripts/<name>.py`` runs)."""
    module = COMMANDS[name]

    def main(argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=f"{name.replace('-', '_')}.py", description=module.HELP)
        module.add_arguments(parser)
        return module.run(parser.parse_args(argv))

    return main


def run(main: Callable[[list[str] | None], int | None]) -> None:
    """Run a script's ``main``; bad input ends it with one line on stderr and exit code 2, no traceback."""
    keep_freed_memory()
    try:
        code = main(None)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code or 0)


def script(name: str) -> None:
    """``scripts/<name>.py``: the subcommand ``name`` run as a program of its own."""
    run(command(name))


def main() -> None:
    """Entry point of the console command."""
    run(dispatch)


if __name__ == "__main__":
    main()
