"""Models named in configs: what a training config builds, how it is written, and what a benchmark loads.

A model spec is a config name of interaction-network sizes (``model``:
``configs/model.yml``), a mapping with ``architecture`` (``hin`` or ``gat``) and sizes,
or a weaver model: ``network`` (a network file), ``data_config`` and network
``options`` (and, trained, its ``state``), run on jet graphs through
:class:`~hin_captum.models.weaver.GraphTagger` and written as weaver writes it, a plain
state dict (``*_best_epoch_state.pt``). A trained model is a checkpoint path or such a
weaver mapping.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import bundled, load_config
from ..util import InputError, atomic_path
from .io import ARCHITECTURES, load_model, save_model


def build_model(spec: str | Mapping[str, Any]) -> nn.Module:
    """A fresh model of the spec, on the CPU."""
    spec = dict(load_config(spec) if isinstance(spec, str) else spec)
    if "network" in spec:
        from .weaver import GraphTagger, load_weaver

        return GraphTagger(load_weaver(bundled(spec["network"]), bundled(spec["data_config"]),
                                       **dict(spec.get("options") or {})))
    architecture = spec.pop("architecture", "hin")
    if architecture not in ARCHITECTURES:
        raise InputError(f"unknown architecture '{architecture}': use {', '.join(ARCHITECTURES)}, or a weaver "
                         "network file (network: ..., data_config: ...)")
    return ARCHITECTURES[architecture].from_config(spec)


def write_model(model: nn.Module, path: str | Path, **metadata: Any) -> Path:
    """Write a trained model: a weaver model's state dict as weaver does, else a hin_captum checkpoint."""
    from .weaver import GraphTagger

    if isinstance(model, GraphTagger):
        with atomic_path(path) as temporary:
            torch.save(model.tagger.state_dict(), temporary)
        return Path(path)
    return save_model(model, path, **metadata)


def load_tagger(spec: str | Path | Mapping[str, Any], map_location: str = "cpu") -> nn.Module:
    """A trained model on jet graphs: a checkpoint (bundled or a path), or a weaver ``network``, ``data_config``
    and ``state`` (with network ``options``); with ``inputs: weaver`` it takes the track features that weaver's
    data config builds (data source ``weaver``), else the CMS schema's columns."""
    if not isinstance(spec, Mapping):
        return load_model(bundled(spec), map_location=map_location)
    from .weaver import GraphTagger, InputsTagger, load_weaver

    missing = [key for key in ("network", "data_config", "state") if key not in spec]
    if missing:
        raise InputError(f"a weaver model needs network, data_config and state; {', '.join(missing)} missing")
    model = load_weaver(bundled(spec["network"]), bundled(spec["data_config"]), bundled(spec["state"]),
                        map_location=map_location, **dict(spec.get("options") or {}))
    return InputsTagger(model) if spec.get("inputs") == "weaver" else GraphTagger(model)
