"""Read the CMS Open Data H->bb ntuples (ROOT TTrees) into jet graphs with uproot.

Jets stream one uproot chunk at a time, so files of any size read in bounded memory.
All array work is done per chunk with awkward and numpy; Python only loops over jets.
"""
from __future__ import annotations

import glob
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import torch
import uproot

from ..util import InputError
from .graphs import JetGraph, jet_graph
from .schema import CMS_HBB, JetSchema

PathLike = str | os.PathLike
MIN_TRACKS = 2
# Why a jet is dropped, in the order the checks apply: a jet counts under the first it fails.
UNLABELED = "unlabeled"
AMBIGUOUS = "ambiguous label"
TOO_FEW_TRACKS = f"fewer than {MIN_TRACKS} tracks"
NON_FINITE = "non-finite features"
_GLOB = re.compile(r"[*?[]")
TREE_CLASSES = ("TTree", "ROOT::RNTuple")
"""What holds the jets: a TTree, or an RNTuple (ROOT 6.34 and later; what uproot 5.6+ writes by default)."""


@dataclass
class ReadReport:
    """What a read saw: jets read and kept, drops by reason, and the input files."""

    jets_read: int = 0
    jets_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)
    """Entries of the tree in each of ``files``, read or not."""

    def add(self, chunk: "JetChunk") -> None:
        """Count the entries of a chunk that was read."""
        self.count(chunk.num_entries, chunk.num_jets, Counter(reason for reason in chunk.reasons.tolist() if reason))

    def count(self, read: int, kept: int, dropped: Mapping[str, int]) -> None:
        """Count entries read, jets kept and jets dropped by reason (of a chunk, a file or another report)."""
        self.jets_read += read
        self.jets_kept += kept
        self.dropped.update(dropped)

    def drops(self) -> str:
        """The drops by reason, most frequent first (ties by name), e.g. ``30 unlabeled, 20 fewer than 2 tracks``."""
        ordered = sorted(self.dropped.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{n} {reason}" for reason, n in ordered if n)

    def summary(self) -> str:
        """One line, e.g. ``kept 950 of 1000 jets; dropped: 30 unlabeled, 20 fewer than 2 tracks``."""
        text = f"kept {self.jets_kept} of {self.jets_read} jets"
        if self.drops():
            text += "; dropped: " + self.drops()
        return text


@dataclass
class JetChunk:
    """The entries of one chunk of one input file as flat arrays: every entry, with the usable jets' tracks.

    Track arrays hold the kept tracks of the usable jets only, jet by jet; per-jet arrays
    hold the usable jets only. ``reasons`` has one entry per input entry of the chunk:
    ``""`` for a usable jet, else why it was dropped.
    """

    file_index: int
    entry_start: int
    reasons: np.ndarray
    """``[entries]`` why each entry was dropped, ``""`` if it is a usable jet."""
    x: np.ndarray
    """``[tracks, F]`` float32 features of the kept tracks, in the schema's column order."""
    tracks_per_jet: np.ndarray
    track_index: np.ndarray
    """``[tracks]`` position of each kept track in its input jet."""
    label: np.ndarray
    """``[jets]`` 1 Hbb, 0 QCD."""
    spectators: dict[str, np.ndarray]
    input_tracks: np.ndarray | None = None
    """``[entries]`` tracks of every entry in the input tree, kept or not (the friend tree's per-track branches have
    this many values per entry)."""

    @property
    def num_entries(self) -> int:
        return len(self.reasons)

    @property
    def usable(self) -> np.ndarray:
        return self.reasons == ""

    @property
    def entry(self) -> np.ndarray:
        """``[jets]`` entry of each usable jet in its file."""
        return self.entry_start + np.flatnonzero(self.usable)

    @property
    def num_jets(self) -> int:
        return len(self.tracks_per_jet)

    def head(self, n_jets: int) -> "JetChunk":
        """The chunk cut after its ``n_jets``-th usable jet (entries after it are left out)."""
        if n_jets >= self.num_jets:
            return self
        entries = int(np.flatnonzero(self.usable)[n_jets - 1]) + 1 if n_jets > 0 else 0
        tracks = int(self.tracks_per_jet[:n_jets].sum())
        return JetChunk(self.file_index, self.entry_start, self.reasons[:entries], self.x[:tracks],
                        self.tracks_per_jet[:n_jets], self.track_index[:tracks], self.label[:n_jets],
                        {name: column[:n_jets] for name, column in self.spectators.items()},
                        None if self.input_tracks is None else self.input_tracks[:entries])

    def graphs(self) -> Iterator[JetGraph]:
        """The usable jets one by one, as graphs (see :func:`jet_graph`)."""
        if self.num_jets == 0:
            return
        split_at = np.cumsum(self.tracks_per_jet)[:-1]
        for jet, (features, positions) in enumerate(zip(np.split(self.x, split_at),
                                                        np.split(self.track_index, split_at))):
            yield jet_graph(
                features,
                int(self.label[jet]),
                **{name: torch.tensor(column[jet : jet + 1]) for name, column in self.spectators.items()},
                entry=torch.tensor([int(self.entry[jet])]),
                file_index=torch.tensor([self.file_index]),
                track_index=torch.tensor(positions),
            )


def expand_paths(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    """The input files, in the order given: glob patterns expanded (sorted), each file once."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise InputError("no input files given: pass a ROOT file, a list of them or a glob pattern")
    files: list[Path] = []
    for item in items:
        text = os.path.expanduser(os.fspath(item))
        if _GLOB.search(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputError(f"no files match '{text}': check the pattern and the folder")
            files.extend(Path(match) for match in matches)
        else:
            files.append(Path(text))
    for path in files:
        if not path.exists():
            raise InputError(f"no such file: {path}")
        if not path.is_file():
            raise InputError(f"{path} is not a file: give ROOT files or glob patterns")
    return list(dict.fromkeys(files))


def track_matrix(chunk: ak.Array, branches: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-track branches of a chunk as one ``[tracks, len(branches)]`` float32 matrix, plus tracks per jet.

    uproot returns ``std::vector<float>`` and counted ``float[]`` branches alike as jagged
    awkward arrays; each is flattened once, so no Python code runs per track.
    """
    counts: np.ndarray | None = None
    columns = []
    for name in branches:
        column = chunk[name]
        if column.ndim != 2:
            raise InputError(
                f"branch '{name}' holds {column.type.content}, not one number per track: "
                "give an ntuple whose track branches are float[] or std::vector<float>"
            )
        lengths = ak.to_numpy(ak.num(column, axis=1))
        if counts is None:
            counts = lengths
        elif not np.array_equal(lengths, counts):
            raise InputError(
                f"branches '{branches[0]}' and '{name}' disagree on the number of tracks in some jets: "
                "every per-track branch must have one entry per track"
            )
        columns.append(ak.to_numpy(ak.flatten(column, axis=1)).astype(np.float32, copy=False))
    return np.stack(columns, axis=1), counts


def _per_jet(chunk: ak.Array, name: str) -> np.ndarray:
    """A branch with one number per jet, as float64."""
    column = chunk[name]
    if column.ndim != 1:
        raise InputError(f"branch '{name}' holds {column.type.content}, not one number per jet: check the ntuple")
    return ak.to_numpy(column).astype(np.float64)


class RootJetReader:
    """Stream the jets of H->bb ntuples as graphs (see :func:`jet_graph`), chunk by chunk.

    Each jet carries ``x`` [n, 48] in the column order of the schema's features, a fully
    connected ``edge_index``, ``y`` [1] (1 Hbb, 0 QCD), the spectators ``fj_pt`` and
    ``fj_sdmass`` [1], ``entry`` [1] and ``file_index`` [1] (into :attr:`files`), and
    ``track_index`` [n] (position of each kept track in the input jet). Jets without a
    unique label, with fewer than 2 tracks or with a NaN/inf feature are dropped and
    counted in :attr:`report`, which each iteration starts afresh.

    ``max_tracks`` keeps the tracks with the largest ``track_sort_feature``, in their
    input order. ``step_size`` is uproot's: entries per chunk (int) or a size ("20 MB").
    ``tree`` defaults to the schema's (``configs/definitions.yml``).
    """

    def __init__(
        self,
        paths: PathLike | Sequence[PathLike],
        tree: str | None = None,
        *,
        max_tracks: int | None = None,
        track_sort_feature: str = "track_pt",
        step_size: int | str = "20 MB",
        schema: JetSchema = CMS_HBB,
    ) -> None:
        features = list(schema.features)
        if max_tracks is not None and max_tracks < MIN_TRACKS:
            raise InputError(f"max_tracks must be at least {MIN_TRACKS} (or None for all tracks), got {max_tracks}")
        if track_sort_feature not in features:
            raise InputError(
                f"unknown track_sort_feature '{track_sort_feature}': use a feature branch such as track_pt"
            )
        if isinstance(step_size, int) and step_size < 1:
            raise InputError(f"step_size must be a positive number of entries or a size like '20 MB', got {step_size}")
        self.files = expand_paths(paths)
        self.tree = tree or schema.tree
        self.schema = schema
        self.max_tracks = max_tracks
        self.step_size = step_size
        self._track_branches = list(dict.fromkeys(features))  # repeated features are read once
        self._columns = np.array([self._track_branches.index(name) for name in features])
        self._sort_column = self._track_branches.index(track_sort_feature)
        self._labels = schema.labels
        self._spectators = list(schema.spectators)
        self._branches = [
            *self._track_branches, *(name for names in self._labels.values() for name in names), *self._spectators
        ]
        self._check_files()

    _missing_hint = "give an H->bb ntuple with all of them"
    """What a file that lacks a needed branch is told."""

    def _check_files(self) -> None:
        """Open every input before any jet is read: refuse a bad file at once, and count the entries."""
        if not self.tree:
            self.tree = self._only_tree(self.files[0])
        self._entries = []
        for path in self.files:
            with self._open(path) as opened:
                self._check_step_size(opened)
                self._entries.append(int(opened.num_entries))
        self.report = self._new_report()

    def _new_report(self) -> ReadReport:
        return ReadReport(files=[str(path) for path in self.files], entries=list(self._entries))

    def __iter__(self) -> Iterator[JetGraph]:
        for chunk in self.all_chunks():
            yield from chunk.graphs()

    def all_chunks(self, max_jets: int | None = None) -> Iterator[JetChunk]:
        """The chunks of every file in order, the last one cut so that at most ``max_jets`` usable jets come;
        :attr:`report` starts afresh and counts what was read."""
        self.report = self._new_report()
        remaining = max_jets
        for file_index in range(len(self.files)):
            for chunk in self.chunks(file_index):
                if remaining is not None:
                    chunk = chunk.head(remaining)
                    remaining -= chunk.num_jets
                self.report.add(chunk)
                yield chunk
                if remaining == 0:
                    return

    def chunk_ranges(self, file_index: int) -> list[tuple[int, int]]:
        """The entry ranges ``[start, stop)`` of one file's chunks: whoever reads the file, in one process or in
        many, cuts it at the same entries. As few chunks as the step allows, of equal sizes (as coffea cuts
        files), so that work units on a cluster take about the same time (no short last chunk)."""
        entries = self._entries[file_index]
        if isinstance(self.step_size, int):
            step = self.step_size
        else:
            with self._open(self.files[file_index]) as tree:
                step = max(1, int(tree.num_entries_for(self.step_size, self._branches)))
        pieces = -(-entries // step)
        return [(entries * k // pieces, entries * (k + 1) // pieces) for k in range(pieces)]

    def chunks(self, file_index: int, entry_start: int = 0, entry_stop: int | None = None) -> Iterator[JetChunk]:
        """The chunks of one input file that lie in ``[entry_start, entry_stop)`` (not counted in the report).

        A range that cuts a chunk gives that chunk's part inside it.
        """
        stop = self._entries[file_index] if entry_stop is None else entry_stop
        ranges = [(max(a, entry_start), min(b, stop)) for a, b in self.chunk_ranges(file_index)
                  if b > entry_start and a < stop]
        with self._open(self.files[file_index]) as tree:
            for start, end in ranges:
                arrays = tree.arrays(self._branches, entry_start=start, entry_stop=end)
                yield self._chunk(arrays, start, file_index)

    @staticmethod
    def _trees(path: Path) -> tuple[Any, list[str]]:
        """The open file and the names of its trees (TTrees and RNTuples)."""
        try:
            file = uproot.open(path)
            classes = file.classnames()
        except (OSError, ValueError, uproot.deserialization.DeserializationError) as error:
            reason = str(error).splitlines()[0]
            raise InputError(f"{path} is not a ROOT file ({reason}): give a ROOT ntuple") from None
        return file, sorted({key.rsplit(";", 1)[0] for key, kind in classes.items() if kind in TREE_CLASSES})

    def _only_tree(self, path: Path) -> str:
        """The tree of a file that has one, as weaver takes it when no tree is named."""
        file, trees = self._trees(path)
        with file:
            if len(trees) != 1:
                raise InputError(f"{path} has {len(trees)} trees ({', '.join(trees) or 'none'}): name the one to "
                                 "read with --tree")
            return trees[0]

    @contextmanager
    def _open(self, path: Path) -> Iterator[Any]:
        """The tree (a TTree or an RNTuple) of one file, checked to hold every branch the reader needs."""
        file, trees = self._trees(path)
        with file:
            if self.tree not in trees:
                raise InputError(
                    f"no tree '{self.tree}' in {path} (trees there: {', '.join(trees) or 'none'}): "
                    "pass the right tree name"
                )
            tree = file[self.tree]
            present = set(tree.keys())
            missing = [name for name in self._branches if name not in present]
            if missing:
                raise InputError(
                    f"{path}:{self.tree} lacks branches {', '.join(missing)}: {self._missing_hint}"
                )
            yield tree

    def _check_step_size(self, tree: uproot.TTree) -> None:
        if isinstance(self.step_size, str):
            try:
                tree.num_entries_for(self.step_size, self._branches)
            except (TypeError, ValueError):
                raise InputError(
                    f"step_size '{self.step_size}' is neither a number of entries nor a size like '20 MB'"
                ) from None

    def _chunk(self, chunk: ak.Array, entry_start: int, file_index: int) -> JetChunk:
        values, counts = track_matrix(chunk, self._track_branches)
        n_jets = len(counts)
        jet_of_track = np.repeat(np.arange(n_jets), counts)
        starts = np.cumsum(counts) - counts
        position = np.arange(len(jet_of_track)) - starts[jet_of_track]  # track index within its jet

        is_qcd, is_hbb = self._classes(chunk)
        non_finite = np.bincount(jet_of_track[~np.isfinite(values).all(axis=1)], minlength=n_jets) > 0
        reasons = np.select(
            [~is_qcd & ~is_hbb, is_qcd & is_hbb, counts < MIN_TRACKS, non_finite],
            [UNLABELED, AMBIGUOUS, TOO_FEW_TRACKS, NON_FINITE],
            default="",
        )
        usable = reasons == ""
        keep = usable[jet_of_track]
        if self.max_tracks is not None:
            keep &= rank_within_jets(values[:, self._sort_column], jet_of_track, position) < self.max_tracks
        return JetChunk(
            file_index=file_index,
            entry_start=int(entry_start),
            reasons=reasons,
            x=np.ascontiguousarray(values[keep][:, self._columns]),
            tracks_per_jet=np.bincount(jet_of_track[keep], minlength=n_jets)[usable],
            track_index=position[keep],
            label=is_hbb[usable].astype(np.int64),
            spectators={name: _per_jet(chunk, name).astype(np.float32)[usable] for name in self._spectators},
            input_tracks=np.asarray(counts, dtype=np.int64),
        )

    def _classes(self, chunk: ak.Array) -> tuple[np.ndarray, np.ndarray]:
        """Per jet, whether it is QCD (sample_isQCD times any QCD flavour) and whether it is Hbb."""
        def total(key: str) -> np.ndarray:
            return np.sum([_per_jet(chunk, name) for name in self._labels[key]], axis=0)

        return total("qcd_sample") * total("qcd_flavours") > 0, total("hbb") > 0


def rank_within_jets(sort_values: np.ndarray, jet_of_track: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Each track's rank in its jet by descending ``sort_values``; ties go to the earlier track."""
    # lexsort is stable and keeps every jet's tracks in one block, in jet order, so
    # the k-th sorted track sits at position[k] of its jet's block.
    order = np.lexsort((-sort_values, jet_of_track))
    rank = np.empty_like(position)
    rank[order] = position
    return rank


@dataclass
class RootJets:
    """Jets read into memory, with the report of the read."""

    jets: list[JetGraph]
    report: ReadReport

    def __len__(self) -> int:
        return len(self.jets)

    def __iter__(self) -> Iterator[JetGraph]:
        return iter(self.jets)

    def __getitem__(self, index: int | slice) -> JetGraph | list[JetGraph]:
        return self.jets[index]


def read_root(
    paths: PathLike | Sequence[PathLike],
    tree: str | None = None,
    max_jets: int | None = None,
    **reader_options: Any,
) -> RootJets:
    """Read the usable jets of H->bb ntuples into memory, at most ``max_jets`` of them.

    ``reader_options`` go to :class:`RootJetReader` (``max_tracks``, ``track_sort_feature``, ``step_size``).
    """
    if max_jets is not None and max_jets < 1:
        raise InputError(f"max_jets must be at least 1 (or None for all jets), got {max_jets}")
    reader = RootJetReader(paths, tree, **reader_options)
    jets = [jet for chunk in reader.all_chunks(max_jets) for jet in chunk.graphs()]
    if not jets:
        raise InputError(f"no usable jets in {', '.join(reader.report.files)}: {reader.report.summary()}")
    return RootJets(jets, reader.report)
