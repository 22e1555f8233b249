"""Explain a whole sample: one run path for every executor.

For each method the run is planned once: every input file whose friend file is complete
from an identical earlier run is skipped (read back for the summary), a friend file of
another run is refused before any work, and the others' chunks become work units
(:class:`~hin_captum.pipeline.units.WorkUnit`). An executor
(:mod:`hin_captum.pipeline.executors`: this process or a Dask cluster) runs the units;
here, one writer per input file appends their branches in entry order to its friend file,
written under a temporary name and renamed when complete, with the run's description and
the file's summary inside. Summaries add up, in any order, into ``summary.root``.

What faults do to a run:

- interrupted (Ctrl-C, SIGKILL): only complete friend files remain; a rerun removes the
  temporary files a killed run left and redoes the files that are not complete;
- a file that cannot be read (a corrupt basket): reported in one line with its entry range
  and the reason, no friend file for it, every other file completes (exit code 1), and a
  rerun redoes only that file;
- a full disk or an output folder that cannot be written: one line naming the folder, no
  partial or temporary file left (exit code 2);
- a Dask worker that dies: Dask reruns its units on the other workers; the friend files
  come out the same.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..output.files import SUMMARY_FOLDER, FriendFile, read_metadata
from ..output.summary import RelevanceSummary
from ..output.table import RelevanceTable
from ..util import InputError, remove_stale_temporaries, temporary_beside, writing_into
from .plan import Plan, matches
from .worker import Worker
from .settings import RunSettings
from .units import FileResult, FileStatus, MethodRun, Tally, UnitResult, UnreadableEntries, WorkUnit, accumulate

Progress = Callable[[str, int], Callable[[int], None]]
"""``progress(method, total entries)`` gives a callback for the entries done."""


def explain_sample(settings: RunSettings, client: Any = None, progress: Progress | None = None,
                   worker: Worker | None = None) -> list[MethodRun]:
    """Every method of ``settings`` over its input files: in this process, or on the Dask ``client``'s cluster
    (the same path; ``worker`` is this process's, made from ``settings`` when not given)."""
    worker = Worker(settings) if worker is None else worker
    settings = worker.with_data_reference(worker.settings)
    worker.settings = settings
    from .executors import InProcess, OnDask

    executor = InProcess(worker) if client is None else OnDask(client, settings, settings.retries)
    return run_sample(Plan(settings, worker.reader), worker, executor, progress)


def run_sample(plan: Plan, worker: Worker, executor: Any, progress: Progress | None = None) -> list[MethodRun]:
    """Every method of ``plan.settings`` over every input file, the units run by ``executor`` (``worker`` makes
    the empty tallies and tables)."""
    settings = plan.settings
    plans = {method: _plan(plan, method) for method in settings.methods}  # refuse foreign outputs first
    runs = []
    for method in settings.methods:
        torch.manual_seed(settings.seed)
        advance = progress(method, sum(plan.reader.report.entries)) if progress else (lambda entries: None)
        runs.append(_run_method(plan, worker, executor, method, plans[method], advance))
    return runs


def _plan(plan: Plan, method: str) -> list[bool]:
    """For each input file, whether its friend file is complete from an identical earlier run (skip it)."""
    settings = plan.settings
    done = []
    for index, name in enumerate(plan.names):
        path = settings.out / method / name
        if not path.exists() or settings.overwrite:
            done.append(False)
        elif matches(read_metadata(path), plan.signature(method, index)):
            done.append(True)
        else:
            raise InputError(f"{path} exists but was not made by this command (other model, options, input or an "
                             "incomplete run): pass --overwrite to redo it, or write to another --out")
    return done


@dataclass
class _File:
    """One input file's state in a run: its units' results as they come, written in entry order."""

    index: int
    units: list[WorkUnit]
    results: dict[int, UnitResult] = field(default_factory=dict)
    written: int = 0
    """Units written so far (the first ``written`` of :attr:`units`)."""
    writer: "FriendFile | None" = None
    tally: Tally | None = None
    tables: list[RelevanceTable] = field(default_factory=list)
    failure: UnreadableEntries | BaseException | None = None


def _run_method(plan: Plan, worker: Worker, executor: Any, method: str, done: list[bool],
                advance: Callable[[int], None]
                ) -> MethodRun:
    settings = plan.settings
    folder = settings.out / method
    existed = folder.exists()
    _prepare(folder)
    result = MethodRun(method)
    started = time.perf_counter()
    total: Tally | None = None
    files = {index: _File(index, plan.units(method, index)) for index, skip in enumerate(done) if not skip}
    remaining = [settings.max_jets]
    try:
        for index, skip in enumerate(done):
            if skip:
                total = accumulate(total, _skipped(plan, worker, method, index, result, advance))
        for state in files.values():  # a file of no entries: an empty friend file
            if not state.units and not (remaining[0] == 0):
                state.writer = FriendFile(folder / plan.names[state.index], settings.output_tree,
                                          settings.basket_entries)
                total = accumulate(total, _finish(plan, worker, method, state, folder, result, complete=True))
        units = [unit for state in files.values() for unit in state.units]
        for unit, outcome in executor.map(units, settings.torch_copy, lambda: remaining[0]):
            advance(unit.entries)
            state = files[unit.file_index]
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, UnreadableEntries) and isinstance(outcome, InputError):
                    raise outcome
                if state.failure is None:
                    state.failure = outcome
                    if state.writer is not None:
                        state.writer.abandon()
                continue
            if state.failure is not None:
                continue
            state.results[unit.entry_start] = outcome
            if remaining[0] is not None:
                remaining[0] -= outcome.tally.read.jets_kept
            _write_ready(plan, state, folder)
            if state.written == len(state.units):
                total = accumulate(total, _finish(plan, worker, method, state, folder, result, complete=True))
        for state in files.values():  # max_jets stopped the run: the file where it fell is partial, later ones unwritten
            if state.failure is None and 0 < state.written < len(state.units):
                total = accumulate(total, _finish(plan, worker, method, state, folder, result, complete=False))
        for state in files.values():
            if state.failure is not None:
                reason = state.failure.what if isinstance(state.failure, UnreadableEntries) else \
                    f"{type(state.failure).__name__}: {(str(state.failure).splitlines() or [''])[0]}"
                result.files.append(FileResult(str(plan.reader.files[state.index]), "", FileStatus.FAILED,
                                               reason=reason))
    except BaseException:
        for state in files.values():
            if state.writer is not None:
                state.writer.abandon()
        if not existed and folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
        raise
    result.files.sort(key=lambda item: [str(path) for path in plan.reader.files].index(item.input))
    result.seconds = time.perf_counter() - started
    return _close(plan, method, result, total, folder, existed)


def _write_ready(plan: Plan, state: _File, folder: Path) -> None:
    """Append the results that follow the ones written, in entry order (units may finish in any order)."""
    settings = plan.settings
    while state.written < len(state.units) and state.units[state.written].entry_start in state.results:
        outcome = state.results.pop(state.units[state.written].entry_start)
        if state.writer is None:
            state.writer = FriendFile(folder / plan.names[state.index], settings.output_tree, settings.basket_entries)
        if outcome.arrays is not None:
            state.writer.extend(outcome.arrays)
        state.tally = accumulate(state.tally, outcome.tally)
        if outcome.table is not None:
            state.tables.append(outcome.table)
        state.written += 1


def _finish(plan: Plan, worker: Worker, method: str, state: _File, folder: Path, result: MethodRun,
            complete: bool) -> Tally:
    """Close one file's friend file (and its PyTorch copy): the rename makes it appear whole."""
    settings = plan.settings
    tally = state.tally if state.tally is not None else worker.tally(method)
    complete = complete and tally.read.jets_read == plan.reader.report.entries[state.index]
    path = folder / plan.names[state.index]
    copy = None
    if settings.torch_copy:
        copy = RelevanceTable.concatenate(state.tables) if state.tables else worker.empty_table(method)
    state.writer.finish(tally.summary, plan.description(method, state.index, tally, complete), copy)
    state.writer = None
    result.files.append(FileResult(str(plan.reader.files[state.index]), str(path),
                                   FileStatus.WRITTEN if complete else FileStatus.PARTIAL, tally.read.jets_kept,
                                   tally.read.jets_read))
    result.read.count(tally.read.jets_read, tally.read.jets_kept, tally.read.dropped)
    return tally


def _skipped(plan: Plan, worker: Worker, method: str, index: int, result: MethodRun,
             advance: Callable[[int], None]) -> Tally:
    """A file done by an identical earlier run: its summary and counts, read back."""
    path = plan.settings.out / method / plan.names[index]
    metadata = read_metadata(path)
    tally = worker.tally(method)
    tally.summary = RelevanceSummary.read(path, SUMMARY_FOLDER)
    tally.read.count(metadata["entries"], metadata["jets"], metadata["dropped"])
    tally.absorbed, tally.logits = metadata.get("absorbed", 0.0), metadata.get("logits", 0.0)
    result.read.count(metadata["entries"], metadata["jets"], metadata["dropped"])
    result.files.append(FileResult(str(plan.reader.files[index]), str(path), FileStatus.SKIPPED, metadata["jets"],
                                   metadata["entries"]))
    advance(metadata["entries"])
    return tally


def _close(plan: Plan, method: str, result: MethodRun, total: Tally | None, folder: Path, existed: bool
           ) -> MethodRun:
    """Refuse a sample without a usable jet; write the global summary (the sum of the files' tallies)."""
    if result.read.jets_kept == 0 and not result.failed:
        for written in result.files:
            Path(written.output).unlink(missing_ok=True)
        if not existed and folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
        raise InputError(f"no usable jets in {', '.join(map(str, plan.reader.files))}: {result.read.summary()}")
    if total is not None:
        result.summary = total.summary
        with writing_into(folder):
            result.summary_path = total.summary.write(folder / "summary.root")
    result.absorbed = total.absorbed / total.logits if total is not None and total.logits > 0 else float("nan")
    return result


def _prepare(folder: Path) -> None:
    """The method's folder, writable, without the temporary files a killed run left (one run per folder)."""
    with writing_into(folder):
        folder.mkdir(parents=True, exist_ok=True)
        temporary_beside(folder / "probe").unlink()
    remove_stale_temporaries(folder)


