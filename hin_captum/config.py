"""One loader for the YAML files under ``configs/``, and the bundled files (``configs/``, ``pretrained/``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .util import InputError

PACKAGE_DIR = Path(__file__).resolve().parent


def _bundle_dir() -> Path:
    """Where ``configs/`` and ``pretrained/`` are: inside the installed package (``pip install .``, a wheel), or
    beside the package in a source checkout (``pip install -e .``, or the checkout on ``sys.path``)."""
    for candidate in (PACKAGE_DIR, PACKAGE_DIR.parent):
        if (candidate / "configs" / "definitions.yml").is_file():
            return candidate
    raise ImportError(f"hin_captum's configs/ is neither in {PACKAGE_DIR} nor beside it: reinstall the package")


BUNDLE_DIR = _bundle_dir()
"""The folder that holds ``configs/`` and ``pretrained/``."""
CONFIG_DIR = BUNDLE_DIR / "configs"


def bundled(path: str | Path) -> Path:
    """A path of the configs, resolved: a file shipped with the package (``pretrained/hin_toy.pt``) if it is one,
    else the path as given (relative to the current folder)."""
    candidate = BUNDLE_DIR / path
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
