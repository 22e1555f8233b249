"""One loader for the YAML files under ``hin_captum/configs/``, and the bundled files of the package."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "configs"


def bundled(path: str | Path) -> Path:
    """A path of the configs, resolved: a file shipped with the package (``pretrained/hin_toy.pt``) if it is one,
    else the path as given (relative to the current folder)."""
    candidate = PACKAGE_DIR / path
    return candidate if not Path(path).is_absolute() and candidate.exists() else Path(path)


def config_path(name_or_path: str | Path) -> Path:
    """Resolve a config given as a path or as a name of the package's configs (with or without ``.yml``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / path, CONFIG_DIR / f"{path}.yml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yml")))
    raise InputError(f"no config '{name_or_path}': give a YAML file or one of: {known}")


def load_config(name_or_path: str | Path) -> dict[str, Any]:
    """Read a YAML config into a dict (``yaml.safe_load``: no code runs)."""
    path = config_path(name_or_path)
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(content, dict):
        raise InputError(f"{path} must hold a YAML mapping at the top level")
    return content


@lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    return load_config("definitions")


def feature_names() -> list[str]:
    """The 48 track features, in the column order the HIN expects (some branches repeat)."""
    return list(_definitions()["features"])


def spectator_names() -> list[str]:
    """Per-jet quantities carried along but never fed to the model."""
    return list(_definitions()["spectators"])


def label_branches() -> dict[str, list[str]]:
    """Branches that define the QCD and Hbb labels."""
    return {key: list(value) for key, value in _definitions()["labels"].items()}


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with repeats told apart: the k-th occurrence of ``a`` (k >= 2) becomes ``a_k``.

    The HIN reads track_pt, track_ptrel and track_dlambdadz twice, so their second
    columns are ``track_pt_2``, ``track_ptrel_2`` and ``track_dlambdadz_2``.
    """
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique
