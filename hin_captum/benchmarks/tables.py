"""Markdown tables of benchmark rows: one helper, so every table is written alike."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows (column -> value) as a markdown table; text is left-aligned, numbers right-aligned with 3 digits."""
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    numeric = [all(_is_number(row.get(column)) for row in rows) for column in columns]
    header = [column.replace("|", "\\|") for column in columns]  # |R| must not end a cell
    lines = ["| " + " | ".join(header) + " |", "|" + "".join("---:|" if n else "---|" for n in numeric)]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(column, float("nan"))) for column in columns) + " |")
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """A number with 3 significant digits (``n/a`` for NaN), anything else as text."""
    if not _is_number(value):
        return str(value)
    if np.isnan(value):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
