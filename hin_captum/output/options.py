"""Choices of an attribution run as the command line gives them: methods and their options, device, model."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..config import feature_names
from ..errors import InputError
from ..lrp.reference import Reference
from ..methods import METHODS, takes_option

LRP_FAMILY = "lrp"
"""Methods whose registry name starts with this take the LRP options (epsilon, composite, rules)."""


def parse_methods(text: str) -> list[str]:
    """Registry names from ``"lrp,ig"``, each once, in the order given."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise InputError(f"unknown method '{','.join(unknown) or text}': use one or more of "
                         f"{', '.join(sorted(METHODS))}, separated by commas")
    return names


def parse_rules(items: Sequence[str]) -> dict[str, str]:
    """LRP rule overrides from ``["bn=pass,*global_mlp.0=gamma:0.5", ...]``: module-name pattern -> rule."""
    rules = {}
    for item in (part.strip() for text in items for part in text.split(",")):
        pattern, separator, rule = item.partition("=")
        if not separator or not pattern.strip() or not rule.strip():
            raise InputError(f"LRP rule '{item}' is not PATTERN=RULE "
                             "(for example 'bn=pass' or '*edge_mlp.0=gamma:0.25')")
        rules[pattern.strip()] = rule.strip()
    return rules


def method_options(
    methods: Sequence[str], configured: Mapping[str, Mapping[str, Any]], lrp: Mapping[str, Any],
    reference: Reference | None = None,
) -> dict[str, dict[str, Any]]:
    """Options of each method: its ``configured`` ones, the ``lrp`` options for the LRP family, and the
    ``reference`` for every method that measures from one.

    Options given for a run without any method that takes them are refused rather than ignored.
    """
    lrp = {key: value for key, value in lrp.items() if value is not None and value != {}}
    if lrp and not any(name.startswith(LRP_FAMILY) for name in methods):
        family = ", ".join(sorted(name for name in METHODS if name.startswith(LRP_FAMILY)))
        raise InputError(f"{', '.join(sorted(lrp))} only apply to the LRP methods ({family}), "
                         f"not to {', '.join(methods)}")
    measured = [name for name in methods if takes_option(name, "reference")]
    if reference is not None and not measured:
        takers = ", ".join(sorted(name for name in METHODS if takes_option(name, "reference")))
        raise InputError(f"--reference only applies to methods that measure from a reference point ({takers}), "
                         f"not to {', '.join(methods)}")
    options = {name: {**configured.get(name, {}), **(lrp if name.startswith(LRP_FAMILY) else {})} for name in methods}
    for name in measured:
        if reference is not None:
            options[name]["reference"] = reference
    return options


def torch_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; cuda only where PyTorch sees a CUDA device."""
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device '{name}': use cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device cuda, but PyTorch {torch.__version__} sees no CUDA device here: use --device cpu")
    return torch.device(name)


def check_model_inputs(model: nn.Module, path: str) -> None:
    """Refuse a model that does not take the track features of the ntuples."""
    expected = len(feature_names())
    n_features = getattr(getattr(model, "config", None), "n_features", expected)
    if n_features != expected:
        raise InputError(f"{path} takes {n_features} features per track, but the ntuples give {expected} "
                         "(configs/definitions.yml): give a model trained on them")
