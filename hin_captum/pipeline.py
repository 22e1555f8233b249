"""Explain a whole sample: stream every input file chunk by chunk into its own friend file, and a global summary.

For each method and each input file, entries are read one chunk at a time
(uproot), explained in batches built on the device, appended to the file's friend
tree and added to the file's summary histograms, then dropped: memory is set by
the chunk and batch sizes, not by the number of jets. A friend file is written
under a temporary name and renamed only when complete, with its run description
and its summary inside, so:

- a rerun of the same command skips every file whose friend file is complete and
  was made with the same model, method and options, and ``overwrite`` redoes them;
- an interrupted run (Ctrl-C, a crash) leaves only complete files and no empty folder;
- the global summary (``summary.root``) is the sum of the files' summaries,
  skipped files included, and is plotted at the end.

Per-jet figures of the most confident Hbb jets are drawn afterwards from the friend
files and the input entries they point to, so they too cover skipped files.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uproot

from .cli import atomic_path
from .config import feature_names, unique_names
from .data.root import ReadReport, RootJetReader
from .errors import InputError
from .methods import METHODS, AttributionMethod
from .models import load_model
from .output.files import FriendTreeWriter, read_friend_jets, read_metadata, torch_copy
from .output.summary import RelevanceSummary, value_ranges
from .output.table import PREDICTED, RelevanceTable, class_names, explain_chunk

SUMMARY_FOLDER = "summary"
"""Inside each friend file: the file's own summary histograms."""
FORMAT = "hin_captum.friend/1"


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a run writes (the options of ``hin-captum attribute``)."""

    model: str
    data: tuple[str, ...]
    methods: Mapping[str, Mapping[str, Any]]
    """Registry name -> options."""
    out: Path
    target: int | str = 1
    tree: str | None = None
    batch_size: int = 64
    step_size: int | str = "20 MB"
    """Entries per chunk (a number) or a size of input per chunk (``"20 MB"``)."""
    max_jets: int | None = None
    device: str = "cpu"
    output_tree: str = "relevance"
    basket_entries: int = 10_000
    overwrite: bool = False
    torch_copy: bool = False
    seed: int = 0
    command: str = ""
    coordinates: Mapping[str, str] = field(default_factory=lambda: {"eta": "track_etarel", "phi": "track_phirel",
                                                                     "pt": "track_pt"})
    """The features that place a track: eta and phi relative to the jet axis (for ΔR), and pT."""


@dataclass
class FileResult:
    """What became of one input file for one method."""

    input: str
    output: str
    status: str
    """``written``, ``skipped`` (complete from an identical earlier run) or ``partial`` (cut by max_jets)."""
    jets: int = 0
    entries: int = 0


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
    """``sum |absorbed| / sum |logit|`` over the jets explained in this run (LRP), NaN otherwise."""

    @property
    def jets_explained(self) -> int:
        return sum(result.jets for result in self.files if result.status != "skipped")


def output_names(files: Sequence[Path]) -> list[str]:
    """The friend file name of each input file: its stem, and the input's position where stems repeat."""
    stems = [path.stem for path in files]
    repeated = {stem for stem in stems if stems.count(stem) > 1}
    return [f"{stem}_{index}.root" if stem in repeated else f"{stem}.root" for index, stem in enumerate(stems)]


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the identity of a checkpoint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """Options as JSON: tensors (a reference point) as lists."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class SampleExplainer:
    """Runs :class:`RunSettings`: loads the model once, then each method over every file."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.device = torch.device(settings.device)
        self.model = load_model(settings.model, map_location=self.device)
        self.model_digest = file_digest(settings.model)
        self.reader = RootJetReader(list(settings.data), settings.tree, step_size=settings.step_size)
        self.names = output_names(self.reader.files)
        self.features = unique_names(feature_names())
        self.classes = class_names()

    def run(self, progress: Callable[[str, int], Callable[[int], None]] | None = None) -> list[MethodRun]:
        """Every method over the sample; ``progress(method, total entries)`` returns a callback for entries done."""
        methods = {name: dict(options) for name, options in self.settings.methods.items()}
        if any(options.get("reference") == "data" for options in methods.values()):
            mean = self.mean_track()
            for options in methods.values():
                if options.get("reference") == "data":
                    options["reference"] = mean
        self.settings = replace(self.settings, methods=methods)
        explainers = {name: METHODS[name](self.model, **options) for name, options in methods.items()}
        plans = {name: self._plan(name) for name in explainers}  # refuse a foreign output before any work
        runs = []
        for name, explainer in explainers.items():
            torch.manual_seed(self.settings.seed)
            advance = progress(name, sum(self.reader.report.entries)) if progress else (lambda entries: None)
            runs.append(self._run_method(name, explainer, plans[name], advance))
        return runs

    def mean_track(self) -> torch.Tensor:
        """The mean of every feature over the tracks of the sample (the first ``max_jets`` usable jets): the
        ``data`` reference, from one streaming pass over the inputs."""
        total, count = np.zeros(len(self.features)), 0
        for chunk in self.reader.all_chunks(self.settings.max_jets):
            total += chunk.x.astype(np.float64).sum(0)
            count += len(chunk.x)
        if count == 0:
            raise InputError(f"no usable jets in {', '.join(map(str, self.reader.files))}: no mean track to measure from")
        return torch.from_numpy(total / count).float()

    def signature(self, method: str, file_index: int) -> dict[str, Any]:
        """What must match for an existing friend file to count as this run's (the run's description)."""
        path = self.reader.files[file_index]
        stat = path.stat()
        settings = self.settings
        return {
            "format": FORMAT, "model_sha256": self.model_digest, "method": method,
            "options": _plain(dict(settings.methods[method])), "target": settings.target,
            "tree": self.reader.tree, "max_jets": settings.max_jets,
            "input": {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        }

    def _plan(self, method: str) -> list[bool]:
        """For each input file, whether its friend file is done already (skip it)."""
        done = []
        for index, name in enumerate(self.names):
            path = self.settings.out / method / name
            if not path.exists() or self.settings.overwrite:
                done.append(False)
                continue
            metadata = read_metadata(path)
            signature = self.signature(method, index)
            if metadata is not None and metadata.get("complete") and all(
                    json.dumps(metadata.get(key), sort_keys=True) == json.dumps(value, sort_keys=True)
                    for key, value in signature.items()):
                done.append(True)
            else:
                raise InputError(f"{path} exists but was not made by this command (other model, options, input or an "
                                 "incomplete run): pass --overwrite to redo it, or write to another --out")
        return done

    def _run_method(self, method: str, explainer: AttributionMethod, done: list[bool],
                    advance: Callable[[int], None]) -> MethodRun:
        folder = self.settings.out / method
        existed = folder.exists()
        result = MethodRun(method)
        started = time.perf_counter()
        summaries: list[RelevanceSummary] = []
        absorbed = [0.0, 0.0]
        remaining = self.settings.max_jets
        try:
            for index, name in enumerate(self.names):
                if remaining == 0:
                    break
                path = folder / name
                if done[index]:
                    summaries.append(RelevanceSummary.read(path, SUMMARY_FOLDER))
                    metadata = read_metadata(path)
                    result.read.count(metadata["entries"], metadata["jets"], metadata["dropped"])
                    result.files.append(FileResult(str(self.reader.files[index]), str(path), "skipped",
                                                   metadata["jets"], metadata["entries"]))
                    advance(metadata["entries"])
                    continue
                summary, file_result = self._write_file(method, explainer, index, path, remaining, advance, absorbed,
                                                        result.read)
                summaries.append(summary)
                result.files.append(file_result)
                if remaining is not None:
                    remaining -= file_result.jets
            if result.read.jets_kept == 0:
                for written in result.files:
                    Path(written.output).unlink(missing_ok=True)
                raise InputError(f"no usable jets in {', '.join(map(str, self.reader.files))}: "
                                 f"{result.read.summary()}")
        except BaseException:
            if not existed and folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
            raise
        result.seconds = time.perf_counter() - started
        result.summary = sum(summaries[1:], summaries[0]) if summaries else None
        if result.summary is not None:
            result.summary_path = result.summary.write(folder / "summary.root")
        result.absorbed = absorbed[0] / absorbed[1] if absorbed[1] > 0 else float("nan")
        return result

    def _write_file(self, method: str, explainer: AttributionMethod, index: int, path: Path, max_jets: int | None,
                    advance: Callable[[int], None], absorbed: list[float], read: ReadReport,
                    ) -> tuple[RelevanceSummary, FileResult]:
        """Explain one input file into its friend file; return its summary."""
        settings = self.settings
        file_read = ReadReport()
        summary = self._empty_summary(method)
        tables: list[RelevanceTable] = []
        jets = entries = 0
        with ExitStack() as stack:
            temporary = stack.enter_context(atomic_path(path))
            copy_path = stack.enter_context(atomic_path(path.with_suffix(".pt"))) if settings.torch_copy else None
            file = stack.enter_context(uproot.recreate(temporary))
            writer = FriendTreeWriter(file, settings.output_tree, settings.basket_entries)
            pending = []  # chunks without a usable jet, written once a table gives the tree its branches
            empty: RelevanceTable | None = None
            for chunk in self.reader.chunks(index):
                if max_jets is not None:
                    chunk = chunk.head(max_jets - jets)
                table = explain_chunk(explainer, chunk, settings.batch_size, settings.target, self.device)
                if table is None:
                    pending.append(chunk)
                else:
                    empty = table.select([])
                    for waiting in pending:
                        writer.extend(empty, waiting)
                    pending.clear()
                    writer.extend(table, chunk)
                    summary.add(table, settings.coordinates)
                    if table.absorbed is not None:
                        absorbed[0] += float(np.abs(table.absorbed.astype(np.float64)).sum())
                        absorbed[1] += float(np.abs(table.output.astype(np.float64)).sum())
                    if copy_path is not None:
                        tables.append(table)
                jets += chunk.num_jets
                entries += chunk.num_entries
                file_read.add(chunk)
                advance(chunk.num_entries)
                if max_jets is not None and jets >= max_jets:
                    break
            for waiting in pending:
                writer.extend(empty if empty is not None else RelevanceTable.empty(method), waiting)
            complete = entries == self.reader.report.entries[index]
            summary.write_into(file, SUMMARY_FOLDER)
            writer.finish({**self.signature(method, index), "complete": complete, "command": settings.command,
                           "jets": jets, "dropped": dict(file_read.dropped)})
            if copy_path is not None:
                torch.save(torch_copy(RelevanceTable.concatenate(tables) if tables else RelevanceTable.empty(method),
                                      {"input": str(self.reader.files[index]), "method": method}), copy_path)
        read.count(file_read.jets_read, file_read.jets_kept, file_read.dropped)
        return summary, FileResult(str(self.reader.files[index]), str(path), "written" if complete else "partial",
                                   jets, entries)

    def most_confident(self, run: MethodRun, n: int, signal: str = "Hbb") -> RelevanceTable:
        """The ``n`` jets of the run the model finds most likely ``signal``, read back from the friend files
        (their features from the input files), most confident first; ties go to the earlier file and entry."""
        candidates = []
        for file_index, result in enumerate(run.files):
            with uproot.open(result.output) as file:
                arrays = file[self.settings.output_tree].arrays(["explained", f"prob_{signal}"], library="np")
            entries = np.flatnonzero(arrays["explained"])
            candidates += [(-float(arrays[f"prob_{signal}"][entry]), file_index, int(entry)) for entry in entries]
        chosen = sorted(candidates)[:n]
        parts = []
        for _, file_index, entry in chosen:
            chunk = next(self.reader.chunks(file_index, entry, entry + 1))
            parts.append(read_friend_jets(run.files[file_index].output, self.settings.output_tree, [chunk],
                                          run.method))
        return RelevanceTable.concatenate(parts) if parts else RelevanceTable.empty(run.method)

    def _empty_summary(self, method: str) -> RelevanceSummary:
        target = self.settings.target
        return RelevanceSummary.empty(self.features, self.classes,
                                      PREDICTED if target == PREDICTED else self.classes[int(target)], method,
                                      value_ranges(self.model.bn, self.features))
