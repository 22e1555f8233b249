"""The files a trained tagger comes in, and what a run needs of them: one class per model family.

A run (``hin-captum attribute``) names a hin_captum checkpoint (``--model``) or a weaver
network file, data config and state dict (``--network --data-config --model``). Either
way it gets a :class:`TaggerFiles`, made once by :func:`tagger_files`, that loads the
:class:`~hin_captum.models.tagger.Tagger`, opens the reader of its inputs, gives the
schema of what the reader yields and identifies the model by its files' bytes; the
pipeline asks it and never which family it is.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.graphs import jet_batch
from ..data.root import RootJetReader
from ..data.schema import CMS_HBB, JetSchema
from ..util import InputError, file_digest
from ..util.modes import eval_mode
from .io import load_model
from .tagger import Tagger, as_tagger


class TaggerFiles(ABC):
    """A trained tagger's files: what a run loads, reads with and records."""

    @abstractmethod
    def load(self, device: torch.device) -> Tagger:
        """The tagger, in eval mode on ``device``, checked against the inputs it will be given."""

    @abstractmethod
    def reader(self, data: Sequence[str], tree: str | None, step_size: int | str) -> RootJetReader:
        """The reader of the tagger's inputs from the ntuples ``data``."""

    @abstractmethod
    def schema(self, tree: str | None) -> JetSchema:
        """What the reader yields: track features, classes, spectators, tree."""

    @abstractmethod
    def digest(self) -> str:
        """The model's identity: its files' bytes (a friend file of another model is not this run's)."""


@dataclass(frozen=True)
class Checkpoint(TaggerFiles):
    """A hin_captum checkpoint (``hin_captum.save_model``) of a model on the tracks of ``jet_schema``'s ntuples."""

    path: str
    jet_schema: JetSchema = CMS_HBB

    def load(self, device: torch.device) -> Tagger:
        tagger = as_tagger(load_model(self.path, map_location=device))
        check_model_inputs(tagger, self.path, len(self.jet_schema.features))
        return tagger

    def reader(self, data: Sequence[str], tree: str | None, step_size: int | str) -> RootJetReader:
        return RootJetReader(list(data), tree, step_size=step_size, schema=self.jet_schema)

    def schema(self, tree: str | None) -> JetSchema:
        return self.jet_schema

    def digest(self) -> str:
        return file_digest(self.path)


def check_model_inputs(tagger: Tagger, path: str, n_features: int) -> None:
    """Refuse a model that does not take the track features of the ntuples: one pass on a jet of two tracks."""
    probe = jet_batch(np.ones((2, n_features), np.float32), np.array([2]),
                      next(tagger.network.parameters()).device, connected=tagger.uses_edges)
    try:
        with eval_mode(tagger.network), torch.no_grad():
            tagger.logits(probe.x, probe)
    except (RuntimeError, IndexError) as error:
        raise InputError(f"{path} does not take the {n_features} features per track that the ntuples give "
                         f"(configs/definitions.yml): give a model trained on them ({str(error).splitlines()[0]})") \
            from None


def tagger_files(model: str | Path, network: str | Path | None = None, data_config: str | Path | None = None,
                 options: Mapping[str, Any] | None = None, constant_groups: Sequence[str] | None = None,
                 schema: JetSchema = CMS_HBB) -> TaggerFiles:
    """The files of a run's model: a hin_captum checkpoint, or with ``network`` a weaver network file, its
    ``data_config`` and state dict ``model`` (with network ``options``; ``constant_groups`` carry no relevance)."""
    if network is None and data_config is None:
        return Checkpoint(str(model), schema)
    if network is None or data_config is None:
        raise InputError("a weaver model needs both --network (its network file) and --data-config")
    from .weaver import WeaverFiles

    return WeaverFiles(str(network), str(data_config), str(model), dict(options or {}),
                       None if constant_groups is None else tuple(constant_groups))
