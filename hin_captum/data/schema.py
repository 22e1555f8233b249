"""What the ntuples hold and the model reads, read once from ``configs/definitions.yml``: the schema of a run.

The code that needs features, classes, labels or coordinates takes a :class:`JetSchema`
(the run's), so nothing re-reads the definitions on the way; :data:`CMS_HBB` is the
schema of the CMS Open Data H->bb ntuples that the interaction network reads.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_config
from ..util import InputError

PREDICTED = "predicted"
"""Target name: explain each jet's predicted class."""
COORDINATES = ("eta", "phi", "pt")
"""What places a track: eta and phi relative to the jet axis (for ΔR), and pT (to rank tracks)."""


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


@dataclass(frozen=True)
class JetSchema:
    """The branches of the ntuples and the classes of the model's logits."""

    features: tuple[str, ...]
    """Track-feature branches in the model's column order (a branch may repeat)."""
    classes: tuple[str, ...]
    """Class names in logit order."""
    spectators: tuple[str, ...]
    """Per-jet branches carried along, never fed to the model."""
    labels: Mapping[str, tuple[str, ...]]
    """Branches that define the labels: ``qcd_sample`` times any of ``qcd_flavours`` is QCD, ``hbb`` is Hbb."""
    tree: str
    track_counter: str
    """Counter branch of the per-track branches in files this project writes."""
    coordinates: Mapping[str, str]
    """Feature names of :data:`COORDINATES`."""

    @classmethod
    def load(cls, name_or_path: str | Path = "definitions") -> "JetSchema":
        """The schema of a definitions YAML (a name of the package's configs, or a path), checked."""
        content = load_config(name_or_path)
        missing = [key for key in ("features", "classes", "spectators", "labels", "tree", "track_counter",
                                   "coordinates") if key not in content]
        if missing:
            raise InputError(f"{name_or_path} lacks {', '.join(missing)}: see configs/definitions.yml")
        schema = cls(
            features=tuple(content["features"]), classes=tuple(content["classes"]),
            spectators=tuple(content["spectators"]),
            labels={key: tuple(value) for key, value in content["labels"].items()},
            tree=str(content["tree"]), track_counter=str(content["track_counter"]),
            coordinates=dict(content["coordinates"]),
        )
        unknown = {key: name for key, name in schema.coordinates.items() if name not in schema.features}
        if set(schema.coordinates) != set(COORDINATES) or unknown:
            raise InputError(f"{name_or_path}: coordinates must name features for {', '.join(COORDINATES)}")
        return schema

    @property
    def columns(self) -> list[str]:
        """Unique names of the feature columns (:func:`unique_names`): what relevance branches are called."""
        return unique_names(self.features)

    def target_choices(self) -> list[str]:
        """What a target may name: a class (lower case) or ``predicted``."""
        return [name.lower() for name in self.classes] + [PREDICTED]

    def target_class(self, name: str) -> int | str:
        """The class index of a target name, or ``predicted``: case, underscores and weaver's ``label_`` prefix
        aside, so ``hbb``, ``Hbb`` and ``label_Hbb`` (and ``H_bb``) name one class."""
        choices = self.target_choices()
        folded = [choice.replace("_", "") for choice in choices]
        key = str(name).lower().removeprefix("label_").replace("_", "")
        if key not in folded:
            raise InputError(f"unknown target '{name}': use one of {', '.join(choices)}")
        return PREDICTED if key == PREDICTED else folded.index(key)

    def target_name(self, target: int | str) -> str:
        """What a target explains, for titles: a class name or ``predicted``."""
        return PREDICTED if target == PREDICTED else self.classes[int(target)]

    def describe(self) -> dict[str, Any]:
        """The schema as plain values (for a run's description)."""
        return {"features": list(self.features), "classes": list(self.classes), "tree": self.tree}


CMS_HBB = JetSchema.load("definitions")
"""The CMS Open Data H->bb ntuples and the interaction network's classes (``configs/definitions.yml``)."""
