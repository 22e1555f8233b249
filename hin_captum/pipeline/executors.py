"""Where work units run: in this process, or on a Dask cluster, behind one interface (as coffea's executors).

An executor maps the work-unit function over units and yields, for each unit, its
:class:`~hin_captum.pipeline.units.UnitResult` or the exception it ended with
(:class:`~hin_captum.pipeline.units.UnreadableEntries` for a file that cannot be read).
The driver (:mod:`hin_captum.pipeline.run`) writes what comes back; results of different
units may come in any order.

- :class:`InProcess` runs the units one after the other with the driver's
  :class:`~hin_captum.pipeline.worker.Worker`, lazily, so ``--max-jets`` can stop early.
- :class:`OnDask` submits them to a cluster: a worker plugin (:class:`RunOnWorker`)
  makes each worker's :class:`~hin_captum.pipeline.worker.Worker` when the worker joins
  (a worker that dies is replaced and makes its own; Dask reruns its units elsewhere),
  and is removed at the end.
"""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from distributed.diagnostics.plugin import WorkerPlugin

from ..util import InputError, keep_freed_memory
from .worker import Worker
from .settings import RunSettings
from .units import UnitResult, UnreadableEntries, WorkUnit

Outcome = UnitResult | BaseException


class InProcess:
    """Units run here, in order, by this process's ``worker``; ``remaining_jets()`` caps the jets of the next unit."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def map(self, units: Iterable[WorkUnit], keep_tables: bool = False,
            remaining_jets: Callable[[], int | None] = lambda: None) -> Iterator[tuple[WorkUnit, Outcome]]:
        for unit in units:
            remaining = remaining_jets()
            if remaining == 0:
                return
            try:
                yield unit, self.worker.explain_unit(unit, remaining, keep_tables)
            except UnreadableEntries as error:
                yield unit, error


class RunOnWorker(WorkerPlugin):
    """What a run keeps in each Dask worker process: its :class:`Worker` (the model loaded once)."""

    name = "hin_captum-run"

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.worker: Worker | None = None

    def setup(self, worker: Any) -> None:
        keep_freed_memory()  # the nanny's MALLOC_TRIM_THRESHOLD_ would return, and zero-fill, every batch's memory
        if self.settings.threads is not None:
            torch.set_num_threads(self.settings.threads)
        self.worker = Worker(self.settings)


def explain_on_worker(plugin: str, unit: WorkUnit, keep_table: bool) -> UnitResult:
    """A work unit on a Dask worker, with the worker's :class:`Worker`."""
    from dask.distributed import get_worker

    return get_worker().plugins[plugin].worker.explain_unit(unit, None, keep_table)


class OnDask:
    """Units run on the cluster of ``client``; each is retried ``retries`` times before its file fails."""

    def __init__(self, client: Any, settings: RunSettings, retries: int) -> None:
        if settings.max_jets is not None:
            raise InputError("--max-jets is for a quick look in one process: leave it out with --workers or "
                             "--scheduler")
        self.client, self.settings, self.retries = client, settings, retries

    def map(self, units: Iterable[WorkUnit], keep_tables: bool = False,
            remaining_jets: Callable[[], int | None] = lambda: None) -> Iterator[tuple[WorkUnit, Outcome]]:
        from dask.distributed import as_completed

        units = list(units)
        if not units:
            return
        plugin = f"{RunOnWorker.name}-{uuid.uuid4().hex}"
        self.client.register_plugin(RunOnWorker(self.settings), name=plugin)
        futures = {self.client.submit(explain_on_worker, plugin, unit, keep_tables, retries=self.retries,
                                      pure=False): unit for unit in units}
        try:
            for future in as_completed(list(futures)):
                try:
                    yield futures[future], future.result()
                except Exception as error:  # the unit failed its retries: its file fails
                    yield futures[future], error
        finally:
            for future in futures:
                future.cancel()
            self.client.unregister_worker_plugin(plugin)


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
