"""The command line: ``hin-captum`` and its subcommands (``commands/``), the options they share (``options``),
and the runner that turns bad input into one line and exit code 2."""
from .console import main, run, script

__all__ = ["main", "run", "script"]
