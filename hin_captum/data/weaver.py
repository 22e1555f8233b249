"""ROOT ntuples read as weaver reads them for a trained model: a data config's branches, new variables,
standardisation, clipping and padding, through weaver-core's own functions, chunk by chunk.

:class:`WeaverJetReader` streams the same chunks (:class:`~hin_captum.data.root.JetChunk`)
as :class:`~hin_captum.data.root.RootJetReader`, so the whole-sample pipeline, its friend
files, its summary, resume and Dask are those of the HIN: a chunk's track matrix holds,
for the tracks weaver keeps (the first ``length`` of each jet), every variable of every
input group in the data config's order, as weaver's ``_finalize_inputs`` computes them.
Every entry is read (no selection: the friend tree lines up with the input tree); a jet
without particles, or whose labels are not exactly one class, is not explained.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from ..util import InputError
from .root import NON_FINITE, TOO_FEW_TRACKS, UNLABELED, JetChunk, PathLike, RootJetReader
from .schema import COORDINATES, JetSchema

INSTALL = 'pip install -e ".[weaver]" (or pip install --no-deps weaver-core==0.5.3 and its numba, vector)'


def weaver(module: str) -> Any:
    """A module of weaver-core, or one line that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise InputError(f"this needs weaver-core ({error}): {INSTALL}") from None


def load_data_config(path: str | Path) -> Any:
    """weaver's ``DataConfig`` of a data config YAML, read by weaver itself."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such data config: {path}")
    config = weaver("weaver.utils.data.config")
    try:
        return config.DataConfig.load(str(path), load_observers=True, load_reweight_info=False)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise InputError(f"{path} is not a weaver data config ({type(error).__name__}: {error})") from None


COORDINATE_NAMES = {"eta": ("track_etarel", "part_deta", "part_etarel"),
                    "phi": ("track_phirel", "part_dphi", "part_phirel"),
                    "pt": ("track_pt", "part_pt", "part_pt_log")}
"""Variable names that place a track, tried in order (the summary's ΔR and pT rank)."""


def weaver_schema(data_config: Any, tree: str | None = None) -> JetSchema:
    """The schema of a weaver run: its input variables (group by group) as track features, its label branches as
    classes (``label_`` dropped), its observers as spectators."""
    variables = [name for group in data_config.input_names for name in data_config.input_dicts[group]]
    coordinates = {}
    for key in COORDINATES:
        found = next((name for name in COORDINATE_NAMES[key] if name in variables), None)
        coordinates[key] = found or variables[0]
    classes = tuple(str(name).removeprefix("label_") for name in data_config.label_value)
    return JetSchema(features=tuple(variables), classes=classes, spectators=tuple(data_config.observer_names),
                     labels={}, tree=tree or data_config.treename or "", track_counter="", coordinates=coordinates)


class WeaverJetReader(RootJetReader):
    """The jets of ROOT files as a weaver data config builds a model's inputs (see the module docstring)."""

    _missing_hint = "the data config reads them: give ntuples that have them, or change its inputs and new_variables"

    def __init__(self, paths: PathLike | Sequence[PathLike], data_config: Any, tree: str | None = None, *,
                 step_size: int | str = "20 MB") -> None:
        self._preprocess = weaver("weaver.utils.data.preprocess")
        self._dataset = weaver("weaver.utils.dataset")
        self.data_config = data_config
        lengths = {int(data_config.input_shapes[group][2]) for group in data_config.input_names}
        if len(lengths) != 1:
            raise InputError("the data config's input groups have different lengths "
                             f"({', '.join(map(str, sorted(lengths)))}): explaining particles and secondary "
                             "vertices together is not supported; give a config of one particle list")
        self.length = lengths.pop()
        self.schema = weaver_schema(data_config, tree)
        if isinstance(step_size, int) and step_size < 1:
            raise InputError(f"step_size must be a positive number of entries or a size like '20 MB', got {step_size}")
        from .root import expand_paths

        self.files = expand_paths(paths)
        self.tree = tree or data_config.treename  # else the files' only tree, as weaver takes it
        self.max_tracks = None
        self.step_size = step_size
        self._branches = sorted(set(data_config.test_load_branches))
        self._check_files()

    def built(self, arrays: ak.Array) -> tuple[ak.Array, dict[str, np.ndarray]]:
        """The branches with the data config's new variables, and weaver's finalised inputs (``_<group>`` arrays,
        labels, observers), by weaver's own functions."""
        # packed: a few entries read from the middle of a basket keep the whole basket's content, which weaver's
        # padding takes as the entries' own
        table = self._preprocess._build_new_variables(ak.to_packed(arrays), self.data_config.test_var_funcs)
        return table, self._dataset._finalize_inputs(table, self.data_config)

    def _chunk(self, arrays: ak.Array, entry_start: int, file_index: int) -> JetChunk:
        config = self.data_config
        table, output = self.built(arrays)
        first_variable = config.input_dicts[config.input_names[0]][0]
        counts = ak.to_numpy(ak.num(table[first_variable], axis=1)).astype(np.int64)
        labels = None
        if config.label_type == "simple":
            labels = np.stack([ak.to_numpy(table[name]).astype(np.float64) for name in config.label_value], 1)
        groups = [output[f"_{group}"] for group in config.input_names]  # [entries, variables, length] each
        dense = np.concatenate(groups, axis=1).transpose(0, 2, 1)  # [entries, length, variables]
        kept = np.minimum(counts, self.length)
        one_label = np.ones(len(counts), bool) if labels is None else labels.sum(1) == 1
        finite = np.isfinite(dense).reshape(len(counts), -1).all(1)
        reasons = np.select([~one_label, kept < 1, ~finite], [UNLABELED, TOO_FEW_TRACKS, NON_FINITE], default="")
        usable = reasons == ""
        position = np.arange(self.length)
        take = usable[:, None] & (position[None, :] < kept[:, None])
        label = output[config.label_names[0]] if config.label_names and config.label_names[0] in output \
            else np.zeros(len(counts), np.int64)
        return JetChunk(
            file_index=file_index,
            entry_start=int(entry_start),
            reasons=reasons,
            x=np.ascontiguousarray(dense[take], dtype=np.float32),
            tracks_per_jet=kept[usable],
            track_index=np.broadcast_to(position, take.shape)[take],
            label=np.asarray(label, dtype=np.int64)[usable],
            spectators={name: np.asarray(output[name], dtype=np.float32)[usable] for name in config.observer_names
                        if name in output},
            input_tracks=counts,
        )


def weaver_arrays(path: PathLike, data_config: Any, tree: str | None = None, entry_stop: int | None = None
                  ) -> dict[str, np.ndarray]:
    """A weaver model's input arrays of one file, as weaver's own functions build them (``[entries, variables,
    length]`` per input group, in the data config's order): what a bare weaver model takes, entry by entry (no
    selection)."""
    reader = WeaverJetReader([path], data_config, tree)
    with reader._open(reader.files[0]) as opened:
        _, output = reader.built(opened.arrays(reader._branches, entry_stop=entry_stop))
    return {group: output[f"_{group}"] for group in data_config.input_names}


def read_weaver_jets(paths: PathLike | Sequence[PathLike], data_config: Any, tree: str | None = None,
                     max_jets: int | None = None) -> list:
    """The usable jets of ntuples as graphs whose track features are a weaver model's inputs (what
    :class:`~hin_captum.models.weaver.InputsTagger` takes), at most ``max_jets`` of them."""
    reader = WeaverJetReader(paths, data_config, tree)
    jets = [jet for chunk in reader.all_chunks(max_jets) for jet in chunk.graphs()]
    if not jets:
        raise InputError(f"no usable jets in {', '.join(map(str, reader.files))}: {reader.report.summary()}")
    return jets
