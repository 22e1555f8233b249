"""Saving and loading checkpoints of this project's models: the interaction network and the GAT tagger.

Checkpoints are untrusted input: they are always read with
``torch.load(..., weights_only=True)``, which never unpickles code.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from torch import nn

from ..util import InputError, atomic_path
from .gat import GATTagger
from .interaction_network import HINConfig, InteractionNetwork

CHECKPOINT_FORMAT = "hin_captum/1"
ARCHITECTURES: dict[str, type[nn.Module]] = {"hin": InteractionNetwork, "gat": GATTagger}
"""The models a checkpoint may hold, by name; each has ``config`` (a dataclass) and ``from_config``."""
_MAX_LISTED_KEYS = 5


def save_model(model: nn.Module, path: str | Path, **metadata: Any) -> Path:
    """Write ``model`` (one of :data:`ARCHITECTURES`) with its sizes and plain-typed ``metadata``, atomically."""
    path = Path(path)
    architecture = next((name for name, cls in ARCHITECTURES.items() if type(model) is cls), None)
    if architecture is None:
        raise InputError(f"save_model writes {', '.join(ARCHITECTURES)} models, not {type(model).__name__}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "architecture": architecture,
        "config": asdict(model.config),
        "state_dict": model.state_dict(),
        "metadata": metadata,
    }
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load one of our checkpoints or a bare HIN-LRP ``state_dict``; return the model in eval mode, on
    ``map_location`` (``"cuda"``, or ``"meta"`` for its shapes alone)."""
    payload = _read_checkpoint(Path(path), map_location)
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        architecture = ARCHITECTURES.get(payload.get("architecture", "hin"))
        if architecture is None:
            raise InputError(f"{path} holds a model of unknown architecture '{payload.get('architecture')}'")
        config = payload["config"]
        state_dict = payload["state_dict"]
    elif isinstance(payload, dict) and all(isinstance(value, torch.Tensor) for value in payload.values()):
        architecture, state_dict = InteractionNetwork, payload
        config = _infer_config(state_dict)
    else:
        raise InputError(f"{path} holds neither a hin_captum checkpoint nor a state_dict of tensors")
    model = architecture.from_config(config).to(torch.device(map_location))
    _check_compatible(model, state_dict, path)
    model.load_state_dict(state_dict)
    return model.eval()


def _read_checkpoint(path: Path, map_location: str | torch.device) -> Any:
    if not path.is_file():
        raise InputError(f"no such checkpoint: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for foreign or unsafe files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"{path} cannot be loaded as a weights-only PyTorch checkpoint ({reason})"
        ) from None


def _infer_config(state_dict: dict[str, torch.Tensor]) -> HINConfig:
    """Read the sizes of a bare state dict from its weight shapes; defaults where keys are missing."""
    defaults = HINConfig()
    bn = state_dict.get("bn.weight")
    edge = state_dict.get("interactionnetwork.edge_model.edge_mlp.0.weight")
    head = state_dict.get("interactionnetwork.global_model.global_mlp.3.weight")
    return HINConfig(
        n_features=bn.shape[0] if bn is not None and bn.dim() == 1 else defaults.n_features,
        hidden=edge.shape[0] if edge is not None and edge.dim() == 2 else defaults.hidden,
        n_classes=head.shape[0] if head is not None and head.dim() == 2 else defaults.n_classes,
    )


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return f"{shown} (and {more} more)" if more > 0 else shown


def _check_compatible(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(
        f"{key} {tuple(state_dict[key].shape)} vs {tuple(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if state_dict[key].shape != expected[key].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    if mismatched:
        problems.append(f"mismatched shapes {_listed(mismatched)}")
    if problems:
        raise InputError(
            f"{path} does not fit the {type(model).__name__}: {'; '.join(problems)}"
        )
