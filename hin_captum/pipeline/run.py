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

The same run can be spread over a Dask cluster (:mod:`hin_captum.pipeline.distributed`):
the work units are the files' chunks (the same entry ranges in every process), each
written as a part and returned with its summary; the parts of a file are joined in
entry order into the same friend file an in-process run writes. Per-jet figures of
the most confident Hbb jets are drawn from the friend files afterwards.
"""
from __future__ import annotations

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

from ..data.graphs import jet_batch
from ..data.root import ReadReport, RootJetReader
from ..methods import METHODS, AttributionMethod
from ..models import load_model
from ..output.files import FriendTreeWriter, read_friend_jets, read_metadata, torch_copy
from ..output.summary import RelevanceSummary, value_ranges
from ..output.table import RelevanceTable
from ..util import InputError, atomic_path, file_digest, release_freed_memory
from .explain import explain_chunk
from .settings import DATA_REFERENCE, RunSettings

SUMMARY_FOLDER = "summary"
"""Inside each friend file (and part): its own summary histograms."""
PARTS_FOLDER = ".parts"
"""Inside a method's folder: the parts of friend files that a distributed run has not joined yet."""
FORMAT = "hin_captum.friend/1"


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
    """``total`` with ``tally`` added (``tally`` itself when there is no total yet): the files' tallies are
    added as they come rather than kept to the end."""
    if total is None:
        return tally
    total.add(tally)
    return total


@dataclass
class FileResult:
    """What became of one input file for one method."""

    input: str
    output: str
    status: str
    """``written``, ``skipped`` (complete from an identical earlier run), ``partial`` (cut by max_jets) or
    ``failed: <reason>`` (a distributed run whose units kept failing: no friend file)."""
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
    """``sum |absorbed| / sum |logit|`` over the jets (LRP), NaN otherwise."""

    @property
    def jets_explained(self) -> int:
        return sum(result.jets for result in self.files if result.status in ("written", "partial"))

    def report(self) -> dict[str, Any]:
        """What the run did, as plain values (``hin-captum attribute --report``)."""
        return {"method": self.method, "jets_explained": self.jets_explained, "seconds": self.seconds,
                "jets_read": self.read.jets_read, "jets_kept": self.read.jets_kept, "dropped": dict(self.read.dropped),
                "absorbed": None if self.absorbed != self.absorbed else self.absorbed,
                "summary": None if self.summary_path is None else str(self.summary_path),
                "files": [vars(result) for result in self.files]}

    @property
    def failed(self) -> list[FileResult]:
        return [result for result in self.files if result.status.startswith("failed")]


def output_names(files: Sequence[Path]) -> list[str]:
    """The friend file name of each input file: its stem, and the input's position where stems repeat."""
    stems = [path.stem for path in files]
    repeated = {stem for stem in stems if stems.count(stem) > 1}
    return [f"{stem}_{index}.root" if stem in repeated else f"{stem}.root" for index, stem in enumerate(stems)]


def _plain(value: Any) -> Any:
    """Options as JSON: tensors (a reference point) as lists."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _matches(metadata: Mapping[str, Any] | None, signature: Mapping[str, Any]) -> bool:
    return metadata is not None and bool(metadata.get("complete")) and all(
        json.dumps(metadata.get(key), sort_keys=True) == json.dumps(value, sort_keys=True)
        for key, value in signature.items())


class SampleExplainer:
    """Runs :class:`RunSettings`: loads the model once, then each method over every file.

    The same object explains single chunk ranges into parts on Dask workers
    (:meth:`write_part`), where one is made per worker and kept for every task.
    """

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self.device = torch.device(settings.device)
        if settings.network is None:
            self.schema = settings.schema
            self.model = load_model(settings.model, map_location=self.device)
            check_model_inputs(self.model, settings.model, len(self.schema.features))
            self.model_digest = file_digest(settings.model)
            self.reader = RootJetReader(list(settings.data), settings.tree, step_size=settings.step_size,
                                        schema=self.schema)
        else:  # a weaver model: its network file, data config and state dict; inputs as weaver builds them
            from ..data.weaver import WeaverJetReader
            from ..models.weaver import InputsTagger, load_weaver

            weaver_model = load_weaver(settings.network, settings.data_config, settings.model,
                                       map_location=self.device, **dict(settings.network_options))
            self.model = InputsTagger(weaver_model, settings.constant_groups)
            self.model_digest = "+".join(file_digest(path) for path in (settings.model, settings.network,
                                                                        settings.data_config))
            self.reader = WeaverJetReader(list(settings.data), weaver_model.data_config, settings.tree,
                                          step_size=settings.step_size)
            self.schema = self.reader.schema
        self.statistics = input_statistics(self.model, len(self.schema.features))
        """Running mean and standard deviation of each track feature (the summary's value axes)."""
        self.names = output_names(self.reader.files)
        self.features = self.schema.columns
        self.classes = list(self.schema.classes)
        self._explainers: dict[str, AttributionMethod] = {}

    # --- the whole run -------------------------------------------------------------------------------------

    def run(self, progress: Callable[[str, int], Callable[[int], None]] | None = None,
            client: Any = None, retries: int = 2) -> list[MethodRun]:
        """Every method over the sample, in this process or on the Dask ``client``'s cluster.

        ``progress(method, total entries)`` returns a callback for entries done.
        """
        if client is not None and self.settings.max_jets is not None:
            raise InputError("--max-jets is for a quick look in one process: leave it out with --workers or "
                             "--scheduler")
        self.settings = replace(self.settings, methods=self._resolved_methods())
        plans = {name: self._plan(name) for name in self.settings.methods}  # refuse foreign outputs before any work
        runs = []
        for method in self.settings.methods:
            torch.manual_seed(self.settings.seed)
            advance = progress(method, sum(self.reader.report.entries)) if progress else (lambda entries: None)
            if client is None:
                runs.append(self._run_here(method, plans[method], advance))
            else:
                from .distributed import run_on_cluster
                runs.append(run_on_cluster(self, client, method, plans[method], advance, retries))
        return runs

    def _resolved_methods(self) -> dict[str, dict[str, Any]]:
        """The methods' options with the ``data`` reference replaced by the sample's mean track."""
        methods = {name: dict(options) for name, options in self.settings.methods.items()}
        if any(isinstance(options.get("reference"), str) and options["reference"] == DATA_REFERENCE
               for options in methods.values()):
            mean = self.mean_track()
            for options in methods.values():
                if isinstance(options.get("reference"), str) and options["reference"] == DATA_REFERENCE:
                    options["reference"] = mean
        return methods

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
        """What must match for an existing friend file (or part) to count as this run's."""
        path = self.reader.files[file_index]
        stat = path.stat()
        settings = self.settings
        return {
            "format": FORMAT, "model_sha256": self.model_digest, "method": method,
            "options": _plain(dict(settings.methods[method])), "target": settings.target,
            "tree": self.reader.tree, "max_jets": settings.max_jets, "step_size": settings.step_size,
            "input": {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        }

    def _plan(self, method: str) -> list[bool]:
        """For each input file, whether its friend file is done already (skip it)."""
        done = []
        for index, name in enumerate(self.names):
            path = self.settings.out / method / name
            if not path.exists() or self.settings.overwrite:
                done.append(False)
            elif _matches(read_metadata(path), self.signature(method, index)):
                done.append(True)
            else:
                raise InputError(f"{path} exists but was not made by this command (other model, options, input or an "
                                 "incomplete run): pass --overwrite to redo it, or write to another --out")
        return done

    def finish(self, method: str, result: MethodRun, total: Tally | None, folder: Path, existed: bool) -> MethodRun:
        """Close a method's run: refuse a sample without a usable jet, write the global summary (``total``, the
        sum of the files' tallies; None when no file gave one)."""
        if result.read.jets_kept == 0 and not result.failed:
            for written in result.files:
                Path(written.output).unlink(missing_ok=True)
            if not existed and folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
            raise InputError(f"no usable jets in {', '.join(map(str, self.reader.files))}: {result.read.summary()}")
        if total is not None:
            result.summary = total.summary
            result.summary_path = total.summary.write(folder / "summary.root")
        result.absorbed = total.absorbed / total.logits if total is not None and total.logits > 0 else float("nan")
        return result

    def skipped(self, method: str, index: int, result: MethodRun, advance: Callable[[int], None]) -> Tally:
        """A file done by an identical earlier run: its summary and counts, read back."""
        path = self.settings.out / method / self.names[index]
        metadata = read_metadata(path)
        tally = self.tally(method)
        tally.summary = RelevanceSummary.read(path, SUMMARY_FOLDER)
        tally.read.count(metadata["entries"], metadata["jets"], metadata["dropped"])
        result.read.count(metadata["entries"], metadata["jets"], metadata["dropped"])
        result.files.append(FileResult(str(self.reader.files[index]), str(path), "skipped", metadata["jets"],
                                       metadata["entries"]))
        advance(metadata["entries"])
        return tally

    # --- in this process -----------------------------------------------------------------------------------

    def _run_here(self, method: str, done: list[bool], advance: Callable[[int], None]) -> MethodRun:
        folder = self.settings.out / method
        existed = folder.exists()
        result = MethodRun(method)
        started = time.perf_counter()
        total: Tally | None = None
        remaining = self.settings.max_jets
        try:
            for index, name in enumerate(self.names):
                if remaining == 0:
                    break
                if done[index]:
                    total = accumulate(total, self.skipped(method, index, result, advance))
                    continue
                tally, file_result = self.write_file(method, index, folder / name, remaining, advance)
                result.files.append(file_result)
                result.read.count(tally.read.jets_read, tally.read.jets_kept, tally.read.dropped)
                total = accumulate(total, tally)
                if remaining is not None:
                    remaining -= file_result.jets
            result.seconds = time.perf_counter() - started
            return self.finish(method, result, total, folder, existed)
        except BaseException:
            if not existed and folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
            raise

    def write_file(self, method: str, index: int, path: Path, max_jets: int | None = None,
                   advance: Callable[[int], None] = lambda entries: None) -> tuple[Tally, FileResult]:
        """Explain one input file into its friend file (atomically), with a PyTorch copy on request."""
        settings = self.settings
        tables: list[RelevanceTable] | None = [] if settings.torch_copy else None
        with ExitStack() as stack:
            temporary = stack.enter_context(atomic_path(path))
            copy_path = stack.enter_context(atomic_path(path.with_suffix(".pt"))) if tables is not None else None
            file = stack.enter_context(uproot.recreate(temporary))
            writer = FriendTreeWriter(file, settings.output_tree, settings.basket_entries)
            tally = self.explain_into(writer, method, index, max_jets=max_jets, advance=advance, tables=tables)
            complete = tally.read.jets_read == self.reader.report.entries[index]
            tally.summary.write_into(file, SUMMARY_FOLDER)
            writer.finish(self.description(method, index, tally, complete))
            if copy_path is not None:
                table = RelevanceTable.concatenate(tables) if tables else self.empty_table(method)
                torch.save(torch_copy(table, {"input": str(self.reader.files[index]), "method": method}), copy_path)
        return tally, FileResult(str(self.reader.files[index]), str(path), "written" if complete else "partial",
                                 tally.read.jets_kept, tally.read.jets_read)

    def description(self, method: str, index: int, tally: Tally, complete: bool, **extra: Any) -> dict[str, Any]:
        """The run description written beside a friend tree (or a part)."""
        return {**self.signature(method, index), "complete": complete, "command": self.settings.command,
                "jets": tally.read.jets_kept, "dropped": dict(tally.read.dropped), **extra}

    # --- shared by both -----------------------------------------------------------------------------------

    def explainer(self, method: str) -> AttributionMethod:
        """The method, made once per process."""
        if method not in self._explainers:
            self._explainers[method] = METHODS[method](self.model, **self.settings.methods[method])
        return self._explainers[method]

    def empty_table(self, method: str) -> RelevanceTable:
        """A table of no jets with the columns the method gives (edges, absorbed), found on a two-track jet."""
        probe = jet_batch(np.zeros((2, len(self.features)), np.float32), np.array([2]), self.device)
        explanation = self.explainer(method).explain(probe, 0)
        return RelevanceTable.empty(method, self.schema, edges=explanation.edge is not None,
                                    absorbed=explanation.absorbed is not None)

    def tally(self, method: str) -> Tally:
        """An empty tally: a summary of no jets."""
        summary = self.settings.summary
        return Tally(RelevanceSummary.empty(self.features, self.classes, self.schema.target_name(self.settings.target),
                                            method, value_ranges(*self.statistics, self.features, summary), summary))

    def explain_into(self, writer: FriendTreeWriter, method: str, index: int, start: int = 0, stop: int | None = None,
                     max_jets: int | None = None, advance: Callable[[int], None] = lambda entries: None,
                     tables: list[RelevanceTable] | None = None) -> Tally:
        """Explain the chunks of file ``index`` in ``[start, stop)`` into ``writer``; return what they gave."""
        settings = self.settings
        explainer = self.explainer(method)
        tally = self.tally(method)
        empty: RelevanceTable | None = None
        for chunk in self.reader.chunks(index, start, stop):
            if max_jets is not None:
                chunk = chunk.head(max_jets - tally.read.jets_kept)
            table = explain_chunk(explainer, chunk, settings.batch_size, settings.target, self.device, self.schema)
            if table is None:
                empty = empty if empty is not None else self.empty_table(method)
                table = empty
            writer.extend(table, chunk)
            tally.summary.add(table, self.schema.coordinates)
            if table.absorbed is not None:
                tally.absorbed += float(np.abs(table.absorbed.astype(np.float64)).sum())
                tally.logits += float(np.abs(table.output.astype(np.float64)).sum())
            if tables is not None and table.num_jets:
                tables.append(table)
            tally.read.add(chunk)
            advance(chunk.num_entries)
            del table, chunk
            release_freed_memory()
            if max_jets is not None and tally.read.jets_kept >= max_jets:
                break
        return tally

    def write_part(self, method: str, index: int, start: int, stop: int, path: Path) -> Tally:
        """Explain the entries ``[start, stop)`` of file ``index`` into a part file (atomically): one work unit."""
        with atomic_path(path) as temporary, uproot.recreate(temporary) as file:
            writer = FriendTreeWriter(file, self.settings.output_tree, self.settings.basket_entries)
            tally = self.explain_into(writer, method, index, start, stop)
            tally.summary.write_into(file, SUMMARY_FOLDER)
            writer.finish(self.description(method, index, tally, True, entry_start=start, entry_stop=stop,
                                           absorbed=tally.absorbed, logits=tally.logits))
        return tally

    def most_confident(self, run: MethodRun, n: int, signal: str = "Hbb") -> RelevanceTable:
        """The ``n`` jets of the run the model finds most likely ``signal``, read back from the friend files
        (their features from the input files), most confident first; ties go to the earlier file and entry."""
        candidates = []
        outputs = {index: result.output for index, result in enumerate(run.files) if not result.status.startswith(
            "failed")}
        for file_index, output in outputs.items():
            with uproot.open(output) as file:
                arrays = file[self.settings.output_tree].arrays(["explained", f"prob_{signal}"], library="np")
            entries = np.flatnonzero(arrays["explained"])
            candidates += [(-float(arrays[f"prob_{signal}"][entry]), file_index, int(entry)) for entry in entries]
        parts = []
        for _, file_index, entry in sorted(candidates)[:n]:
            chunk = next(self.reader.chunks(file_index, entry, entry + 1))
            parts.append(read_friend_jets(outputs[file_index], self.settings.output_tree, [chunk], run.method,
                                         self.schema))
        return RelevanceTable.concatenate(parts) if parts else RelevanceTable.empty(run.method, self.schema)


def check_model_inputs(model: torch.nn.Module, path: str, n_features: int) -> None:
    """Refuse a model that does not take the track features of the ntuples."""
    expected = getattr(getattr(model, "config", None), "n_features", n_features)
    if expected != n_features:
        raise InputError(f"{path} takes {expected} features per track, but the ntuples give {n_features} "
                         "(configs/definitions.yml): give a model trained on them")


def input_statistics(model: torch.nn.Module, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The running mean and standard deviation of each input feature: the model's input BatchNorm (``bn``, the
    HIN's and the GAT's), a weaver model's input BatchNorms, or 0 and 1."""
    norm = getattr(model, "bn", None)
    if isinstance(norm, torch.nn.BatchNorm1d):
        return norm.running_mean, (norm.running_var + norm.eps).sqrt()
    if hasattr(model, "input_statistics"):
        return model.input_statistics()
    return torch.zeros(n_features), torch.ones(n_features)
