"""What a run reads and writes, decided before any model is loaded: the input files, their friend files' names and
resume signatures, and the work units.

The driver makes one :class:`Plan`; the work units it gives are explained by a
:class:`~hin_captum.pipeline.worker.Worker` in whichever process runs them.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch

from ..data.root import RootJetReader
from .settings import RunSettings
from .units import Tally, WorkUnit

FORMAT = "hin_captum.friend/1"


class Plan:
    """The input files of a run (opened and checked by the reader), the friend file each gets, what makes an
    earlier friend file this run's, and the units of work."""

    def __init__(self, settings: RunSettings, reader: RootJetReader | None = None) -> None:
        self.settings = settings
        self.reader = open_reader(settings) if reader is None else reader
        self.model_digest = settings.files.digest()
        """The identity of the model: its files' bytes."""
        self.names = output_names(self.reader.files)

    def signature(self, method: str, file_index: int) -> dict[str, Any]:
        """What must match for an existing friend file to count as this run's."""
        path = self.reader.files[file_index]
        stat = path.stat()
        settings = self.settings
        return {
            "format": FORMAT, "model_sha256": self.model_digest, "method": method,
            "options": _plain(dict(settings.methods[method])), "target": settings.target,
            "tree": self.reader.tree, "max_jets": settings.max_jets, "step_size": settings.step_size,
            "max_edges": settings.max_edges,
            "input": {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        }

    def description(self, method: str, file_index: int, tally: Tally, complete: bool) -> dict[str, Any]:
        """The run description written beside a friend tree."""
        return {**self.signature(method, file_index), "complete": complete, "command": self.settings.command,
                "jets": tally.read.jets_kept, "dropped": dict(tally.read.dropped),
                "absorbed": tally.absorbed, "logits": tally.logits}

    def units(self, method: str, file_index: int) -> list[WorkUnit]:
        """The work units of one file: its chunks' entry ranges."""
        return [WorkUnit(method, file_index, start, stop) for start, stop in self.reader.chunk_ranges(file_index)]


def open_reader(settings: RunSettings) -> RootJetReader:
    """The reader of a run's input files, as the model's files say (the schema's branches, or weaver's inputs)."""
    return settings.files.reader(settings.data, settings.tree, settings.step_size)


def output_names(files) -> list[str]:
    """The friend file name of each input file: its stem, and the input's position where stems repeat."""
    stems = [path.stem for path in files]
    repeated = {stem for stem in stems if stems.count(stem) > 1}
    return [f"{stem}_{index}.root" if stem in repeated else f"{stem}.root" for index, stem in enumerate(stems)]


def matches(metadata: Mapping[str, Any] | None, signature: Mapping[str, Any]) -> bool:
    """Whether a friend file's description is complete and of this run."""
    return metadata is not None and bool(metadata.get("complete")) and all(
        json.dumps(metadata.get(key), sort_keys=True) == json.dumps(value, sort_keys=True)
        for key, value in signature.items())


def _plain(value: Any) -> Any:
    """Options as JSON: tensors (a reference point) as lists."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
