"""The one exception type for bad user input.

Scripts catch :class:`InputError` and print its message as a single line, so
every message must say what is wrong and how to fix it.
"""
from __future__ import annotations

from collections.abc import Iterable


class InputError(ValueError):
    """Bad input from the user: a missing file, a wrong checkpoint, an unknown option."""


def refuse_unknown(given: Iterable[str], known: Iterable[str], what: str) -> None:
    """Refuse, in one line naming the accepted ones, any of the ``given`` keys (options, settings) not ``known``;
    ``what`` names them (``"prototype option"``, ``"method 'lrp' option"``)."""
    known = list(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        accepted = f"use {', '.join(known)}" if known else "it takes none"
        raise InputError(f"unknown {what}(s) {', '.join(unknown)}: {accepted}")
