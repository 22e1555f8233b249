"""The subcommands of ``hin-captum`` (and of the scripts in ``scripts/``): argument parsing, then one call in.

Each module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""
from . import attribute, benchmark, make_toy_data, plot, prototype, train

COMMANDS = {module.NAME: module for module in (attribute, prototype, benchmark, train, make_toy_data, plot)}

__all__ = ["COMMANDS"]
