"""Run the whole-sample pipeline on Dask: a local cluster (``--workers N``) or an existing scheduler (``--scheduler``).

The work units are (input file, chunk) pairs: the same entry ranges an in-process run
reads, so every batch holds the same jets and every number comes out the same. Each
unit runs on a worker, which explains its entries into a part file
(``<out>/<method>/.parts/<file>/<first entry>.root``, written atomically) and returns
its summary histograms. The client joins the parts of each file in entry order into
the friend file an in-process run writes, adds the summaries, and removes the parts.

- The model is loaded once per worker: a worker plugin (:class:`RunOnWorker`), registered
  for the run, makes the worker's :class:`~hin_captum.pipeline.SampleExplainer` when the
  worker joins (a worker that restarts gets its own) and is removed at the end.
- Dask retries a failing unit; if it keeps failing, its input file is reported and gets
  no friend file, while the other files complete.
- A rerun skips finished files and, within an interrupted file, the finished parts.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import uproot
from distributed.diagnostics.plugin import WorkerPlugin

from ..util import InputError, atomic_path, keep_freed_memory
from ..output.files import FriendTreeWriter, read_metadata, tree_arrays
from ..output.summary import RelevanceSummary
from .run import (
    PARTS_FOLDER, SUMMARY_FOLDER, FileResult, MethodRun, RunSettings, SampleExplainer, Tally, _matches, accumulate,
)

class RunOnWorker(WorkerPlugin):
    """What a run keeps in each worker process: its settings' :class:`SampleExplainer` (the model loaded once)."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.sample: SampleExplainer | None = None

    def setup(self, worker: Any) -> None:
        keep_freed_memory()  # the nanny's MALLOC_TRIM_THRESHOLD_ would return, and zero-fill, every batch's memory
        if self.settings.threads is not None:
            torch.set_num_threads(self.settings.threads)
        self.sample = SampleExplainer(self.settings)


def explain_part(plugin: str, method: str, index: int, start: int, stop: int, path: str) -> Tally:
    """One work unit, on a worker: explain entries ``[start, stop)`` of file ``index`` into the part ``path``."""
    from dask.distributed import get_worker

    return get_worker().plugins[plugin].sample.write_part(method, index, start, stop, Path(path))


@contextmanager
def dask_client(workers: int | None, scheduler: str | None, threads: int | None) -> Iterator[Any]:
    """A Dask client: of a new local cluster of ``workers`` processes, of the scheduler at ``scheduler``, or None
    (run in this process) when neither is given."""
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise InputError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise InputError(f"no Dask scheduler answers at {scheduler} ({error}): start one or check the address") \
                from None
        with client:
            yield client
        return
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def default_threads(workers: int | None) -> int | None:
    """PyTorch threads of each of ``workers`` local worker processes: the machine's cores shared out."""
    return None if workers is None else max(1, (os.cpu_count() or 1) // max(workers, 1))


def run_on_cluster(sample: SampleExplainer, client: Any, method: str, done: list[bool],
                   advance: Callable[[int], None], retries: int) -> MethodRun:
    """One method over the sample as units on the cluster; the parts joined into friend files here."""
    from dask.distributed import as_completed

    settings = sample.settings
    if settings.torch_copy:
        raise InputError("--torch writes its copy in one process: leave it out with --workers or --scheduler")
    folder = settings.out / method
    existed = folder.exists()
    result = MethodRun(method)
    started = time.perf_counter()
    total: Tally | None = None
    plugin = f"hin_captum-run-{uuid.uuid4().hex}"
    client.register_plugin(RunOnWorker(settings), name=plugin)
    parts: dict[int, dict[int, tuple[int, Path, Tally | None]]] = {}
    futures: dict[Any, tuple[int, int, int]] = {}
    try:
        for index, name in enumerate(sample.names):
            if done[index]:
                total = accumulate(total, sample.skipped(method, index, result, advance))
                continue
            parts[index] = {}
            for start, stop in sample.reader.chunk_ranges(index):
                path = folder / PARTS_FOLDER / Path(name).stem / f"{start}.root"
                signature = {**sample.signature(method, index), "entry_start": start, "entry_stop": stop}
                if not settings.overwrite and path.exists() and _matches(read_metadata(path), signature):
                    parts[index][start] = (stop, path, _part_tally(sample, method, path))
                    advance(stop - start)
                    continue
                parts[index][start] = (stop, path, None)
                future = client.submit(explain_part, plugin, method, index, start, stop, str(path),
                                       retries=retries, pure=False)
                futures[future] = (index, start, stop)
        failures: dict[int, str] = {}
        for index in [i for i, ranges in parts.items() if all(t is not None for _, _, t in ranges.values())]:
            total = accumulate(total, _join(sample, method, index, parts.pop(index), result))
        for future in as_completed(list(futures)):
            index, start, stop = futures[future]
            try:
                tally = future.result()
            except Exception as error:  # the unit failed its retries: its file gets no friend file
                failures.setdefault(index, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
                tally = None
            advance(stop - start)
            if index not in parts:
                continue
            end, path, _ = parts[index][start]
            parts[index][start] = (end, path, tally)
            if index not in failures and all(t is not None for _, _, t in parts[index].values()):
                total = accumulate(total, _join(sample, method, index, parts.pop(index), result))
        for index in sorted(failures):  # its finished parts stay, so a rerun redoes only the failed units
            result.files.append(FileResult(str(sample.reader.files[index]), "", f"failed: {failures[index]}"))
        result.files.sort(key=lambda item: [str(path) for path in sample.reader.files].index(item.input))
    except BaseException:
        for future in futures:
            future.cancel()
        if not existed and folder.exists() and not any(folder.rglob("*.root")):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        client.unregister_worker_plugin(plugin)
    result.seconds = time.perf_counter() - started
    return sample.finish(method, result, total, folder, existed)


def _part_tally(sample: SampleExplainer, method: str, path: Path) -> Tally:
    """The tally of a finished part, read back (resume)."""
    metadata = read_metadata(path)
    tally = sample.tally(method)
    tally.summary = RelevanceSummary.read(path, SUMMARY_FOLDER)
    tally.read.count(metadata["entry_stop"] - metadata["entry_start"], metadata["jets"], metadata["dropped"])
    tally.absorbed, tally.logits = metadata.get("absorbed", 0.0), metadata.get("logits", 0.0)
    return tally


def _join(sample: SampleExplainer, method: str, index: int, ranges: dict[int, tuple[int, Path, Tally]],
          result: MethodRun) -> Tally:
    """The parts of one file, in entry order, into its friend file (atomically); then the parts go."""
    settings = sample.settings
    path = settings.out / method / sample.names[index]
    total = sample.tally(method)
    with atomic_path(path) as temporary, uproot.recreate(temporary) as file:
        writer = FriendTreeWriter(file, settings.output_tree, settings.basket_entries)
        for start in sorted(ranges):
            _, part, tally = ranges[start]
            with uproot.open(part) as opened:
                writer.extend_arrays(tree_arrays(opened[settings.output_tree].arrays()))
            total.add(tally)
        total.summary.write_into(file, SUMMARY_FOLDER)
        writer.finish(sample.description(method, index, total, True))
    for _, part, _ in ranges.values():
        part.unlink(missing_ok=True)
    part_folder = settings.out / method / PARTS_FOLDER / Path(sample.names[index]).stem
    shutil.rmtree(part_folder, ignore_errors=True)
    if (settings.out / method / PARTS_FOLDER).exists() and not any((settings.out / method / PARTS_FOLDER).iterdir()):
        (settings.out / method / PARTS_FOLDER).rmdir()
    result.files.append(FileResult(str(sample.reader.files[index]), str(path), "written", total.read.jets_kept,
                                   total.read.jets_read))
    result.read.count(total.read.jets_read, total.read.jets_kept, total.read.dropped)
    return total
