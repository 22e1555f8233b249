"""The model of one process and the work-unit function: a file's entry range into friend-tree branches.

A :class:`Worker` is made once per process (the driver's, and each Dask worker's): it
loads the tagger and opens the inputs. :meth:`Worker.explain_unit` is the only code that
explains entries, wherever a unit runs.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import uproot

from ..data.graphs import jet_batch
from ..data.root import RootJetReader
from ..methods import METHODS, AttributionMethod
from ..output.files import friend_arrays, read_friend_jets
from ..output.summary import RelevanceSummary, value_ranges
from ..output.table import RelevanceTable
from ..util import InputError, release_freed_memory
from .explain import explain_chunk
from .plan import open_reader
from .settings import DATA_REFERENCE, RunSettings
from .units import FileStatus, MethodRun, Tally, UnitResult, UnreadableEntries, WorkUnit


class Worker:
    """The tagger and the reader of one process, and the methods (made once each)."""

    def __init__(self, settings: RunSettings, reader: RootJetReader | None = None) -> None:
        self.settings = settings
        self.device = torch.device(settings.device)
        self.reader = open_reader(settings) if reader is None else reader
        self.schema = self.reader.schema
        self.tagger = settings.files.load(self.device)
        self.statistics = self.tagger.input_statistics(len(self.schema.features))
        """Running mean and standard deviation of each track feature (the summary's value axes)."""
        self.features = self.schema.columns
        self.classes = list(self.schema.classes)
        self._explainers: dict[str, AttributionMethod] = {}

    def with_data_reference(self, settings: RunSettings) -> RunSettings:
        """``settings`` with the ``data`` reference replaced by the sample's mean track (one streaming pass)."""
        def wants(options: Mapping[str, Any]) -> bool:
            return isinstance(options.get("reference"), str) and options["reference"] == DATA_REFERENCE

        if not any(wants(options) for options in settings.methods.values()):
            return settings
        mean = self.mean_track()
        methods = {name: {**options, **({"reference": mean} if wants(options) else {})}
                   for name, options in settings.methods.items()}
        return replace(settings, methods=methods)

    def mean_track(self) -> torch.Tensor:
        """The mean of every feature over the tracks of the sample (the first ``max_jets`` usable jets)."""
        total, count = np.zeros(len(self.features)), 0
        for chunk in self.reader.all_chunks(self.settings.max_jets):
            total += chunk.x.astype(np.float64).sum(0)
            count += len(chunk.x)
        if count == 0:
            raise InputError(f"no usable jets in {', '.join(map(str, self.reader.files))}: no mean track to measure from")
        return torch.from_numpy(total / count).float()

    # --- explaining ---------------------------------------------------------------------------------------

    def explainer(self, method: str) -> AttributionMethod:
        """The method, made once per process."""
        if method not in self._explainers:
            self._explainers[method] = METHODS[method](self.tagger, **self.settings.methods[method])
        return self._explainers[method]

    def empty_table(self, method: str) -> RelevanceTable:
        """A table of no jets with the columns the method gives (edges, absorbed), found on a two-track jet."""
        probe = jet_batch(np.ones((2, len(self.features)), np.float32), np.array([2]), self.device,
                          connected=self.tagger.uses_edges)
        explanation = self.explainer(method).explain(probe, 0)
        return RelevanceTable.empty(method, self.schema, edges=explanation.edge is not None,
                                    absorbed=explanation.absorbed is not None, edge_names=explanation.edge_names)

    def tally(self, method: str) -> Tally:
        """An empty tally: a summary of no jets."""
        summary = self.settings.summary
        return Tally(RelevanceSummary.empty(self.features, self.classes, self.schema.target_name(self.settings.target),
                                            method, value_ranges(*self.statistics, self.features, summary), summary))

    def explain_unit(self, unit: WorkUnit, max_jets: int | None = None, keep_table: bool = False) -> UnitResult:
        """Explain the entries of ``unit`` (at most ``max_jets`` usable jets): their friend-tree branches and tally.

        Entries that cannot be read raise :class:`UnreadableEntries` (the file fails, the run goes on).
        """
        settings = self.settings
        explainer = self.explainer(unit.method)
        tally = self.tally(unit.method)
        pieces, tables = [], []
        for chunk in self._chunks(unit):
            if max_jets is not None:
                chunk = chunk.head(max_jets - tally.read.jets_kept)
            table = explain_chunk(explainer, chunk, settings.batch_size, settings.target, self.device, self.schema,
                                  settings.max_edges)
            table = self.empty_table(unit.method) if table is None else table
            pieces.append(friend_arrays(table, chunk))
            tally.summary.add(table, self.schema.coordinates)
            if table.absorbed is not None:
                tally.absorbed += float(np.abs(table.absorbed.astype(np.float64)).sum())
                tally.logits += float(np.abs(table.output.astype(np.float64)).sum())
            if keep_table and table.num_jets:
                tables.append(table)
            tally.read.add(chunk)
            del table, chunk
            release_freed_memory()
            if max_jets is not None and tally.read.jets_kept >= max_jets:
                break
        arrays = concatenate_arrays(pieces) if pieces else None
        return UnitResult(unit, arrays, tally, RelevanceTable.concatenate(tables) if tables else None)

    def _chunks(self, unit: WorkUnit):
        """The reader's chunks of the unit, a failure to read them as :class:`UnreadableEntries`."""
        chunks = self.reader.chunks(unit.file_index, unit.entry_start, unit.entry_stop)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as error:  # uproot's and the decompressors' many kinds, or garbage read: a corrupt basket
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise UnreadableEntries(self.reader.files[unit.file_index], unit.entry_start, unit.entry_stop,
                                        f"{type(error).__name__}: {reason}") from None
            yield chunk

    # --- reading back ------------------------------------------------------------------------------------

    def most_confident(self, run: MethodRun, n: int, signal: str = "Hbb") -> RelevanceTable:
        """The ``n`` jets of the run the model finds most likely ``signal``, read back from the friend files
        (their features from the input files), most confident first; ties go to the earlier file and entry."""
        candidates = []
        outputs = {index: result.output for index, result in enumerate(run.files)
                   if result.status is not FileStatus.FAILED and result.output}
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



def concatenate_arrays(pieces: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Friend-tree branches of consecutive chunks as one set of branches."""
    import awkward as ak

    first = pieces[0]
    return {name: (ak.concatenate([piece[name] for piece in pieces]) if isinstance(first[name], ak.Array)
                   else np.concatenate([piece[name] for piece in pieces])) for name in first}
