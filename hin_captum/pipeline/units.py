"""The pieces of a run: work units (a file's entry range), what a unit gives, and what became of each file."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from ..data.root import ReadReport
from ..output.summary import RelevanceSummary
from ..output.table import RelevanceTable


@dataclass(frozen=True)
class WorkUnit:
    """One method over one entry range ``[entry_start, entry_stop)`` of one input file: a chunk of the reader,
    the same in every process, so every batch holds the same jets wherever it runs."""

    method: str
    file_index: int
    entry_start: int
    entry_stop: int

    @property
    def entries(self) -> int:
        return self.entry_stop - self.entry_start


@dataclass
class Tally:
    """What a stretch of entries gave: its summary, what was read, and the sums behind the absorbed share."""

    summary: RelevanceSummary
    read: ReadReport = field(default_factory=ReadReport)
    absorbed: float = 0.0
    """Sum of ``|absorbed|`` over the jets (LRP)."""
    logits: float = 0.0
    """Sum of ``|logit|`` over the jets whose absorbed part is known."""

    def add(self, other: "Tally") -> None:
        self.summary = self.summary + other.summary
        self.read.count(other.read.jets_read, other.read.jets_kept, other.read.dropped)
        self.absorbed += other.absorbed
        self.logits += other.logits


def accumulate(total: Tally | None, tally: Tally) -> Tally:
    """``total`` with ``tally`` added (``tally`` itself when there is no total yet): tallies are added as they come
    rather than kept to the end."""
    if total is None:
        return tally
    total.add(tally)
    return total


@dataclass
class UnitResult:
    """What a work unit gives: the friend-tree branches of its entries, its tally, and (for ``--torch``) its
    relevance table."""

    unit: WorkUnit
    arrays: Mapping[str, ak.Array | np.ndarray] | None
    """Branches of the unit's entries in order (None for a unit of no entries)."""
    tally: Tally
    table: RelevanceTable | None = None


class UnreadableEntries(Exception):
    """Entries of an input file that could not be read (a corrupt basket): that file fails, the others go on."""

    def __init__(self, path: str | Path, entry_start: int, entry_stop: int, reason: str) -> None:
        super().__init__(path, entry_start, entry_stop, reason)  # the arguments: pickled to and from Dask workers
        self.path, self.entry_start, self.entry_stop, self.reason = str(path), entry_start, entry_stop, reason

    @property
    def what(self) -> str:
        """What went wrong, without the file's name."""
        return f"entries {self.entry_start} to {self.entry_stop} could not be read ({self.reason})"

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


class FileStatus(Enum):
    WRITTEN = "written"
    SKIPPED = "skipped"
    """Complete from an identical earlier run."""
    PARTIAL = "partial"
    """Cut by ``max_jets``."""
    FAILED = "failed"
    """Some of its entries could not be read: no friend file."""


@dataclass
class FileResult:
    """What became of one input file for one method."""

    input: str
    output: str
    status: FileStatus
    jets: int = 0
    entries: int = 0
    reason: str = ""
    """Why it failed (without the file's name)."""

    def report(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "status": self.status.value, "jets": self.jets,
                "entries": self.entries, **({"reason": self.reason} if self.reason else {})}


@dataclass
class MethodRun:
    """One method over the whole sample."""

    method: str
    files: list[FileResult] = field(default_factory=list)
    read: ReadReport = field(default_factory=ReadReport)
    """Entries read and jets kept or dropped (and why), skipped files included (from their descriptions)."""
    seconds: float = 0.0
    summary: RelevanceSummary | None = None
    summary_path: Path | None = None
    absorbed: float = float("nan")
    """``sum |absorbed| / sum |logit|`` over the jets (LRP), NaN otherwise."""

    @property
    def jets_explained(self) -> int:
        return sum(result.jets for result in self.files if result.status in (FileStatus.WRITTEN, FileStatus.PARTIAL))

    @property
    def failed(self) -> list[FileResult]:
        return [result for result in self.files if result.status is FileStatus.FAILED]

    def report(self) -> dict[str, Any]:
        """What the run did, as plain values (``hin-captum attribute --report``)."""
        return {"method": self.method, "jets_explained": self.jets_explained, "seconds": self.seconds,
                "jets_read": self.read.jets_read, "jets_kept": self.read.jets_kept, "dropped": dict(self.read.dropped),
                "absorbed": None if self.absorbed != self.absorbed else self.absorbed,
                "summary": None if self.summary_path is None else str(self.summary_path),
                "files": [result.report() for result in self.files]}
