"""``hin-captum prototype``: prototypes of real ntuples, written as an ntuple of the input's schema, explained by
the attribute pipeline (their friend file and summary) and drawn.

What a run writes into its folder:

* ``prototypes.root``: the prototypes in the input's tree (``--tree``) and branches (labelled as the
  target class; spectators from their starting jets), with ``prototype_score``,
  ``start_score``, ``start_file`` and ``start_entry`` per jet;
* ``lrp/``: their LRP friend file and summary, by the same run path as ``hin-captum attribute``;
* ``figures/``: ``prototype<k>`` per prototype (the change beside the 3D relevance) and
  ``moved_features`` over all of them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..config import bundled, load_config
from ..data import RootJetReader, read_root
from ..data.schema import CMS_HBB, JetSchema
from ..data.writing import write_jets
from ..models.specs import load_tagger
from ..output.files import read_friend_jets
from ..pipeline import explain_sample
from ..pipeline.settings import RunSettings
from ..plots.prototypes import moved_features, prototype_figure
from ..plots.style import feature_labels, save_figure
from ..util import InputError, refuse_unknown, writing_into
from .optimize import Prototypes, prototype

CONFIDENT = 0.99
"""The p(target) a prototype is counted as reaching (issue 22's bar)."""
PROTOTYPES_FILE = "prototypes.root"


@dataclass(frozen=True)
class PrototypeSettings:
    """What one ``hin-captum prototype`` run does, checked once (:meth:`load`)."""

    model: str
    data: tuple[str, ...]
    tree: str | None
    target: int
    n: int
    seed: int
    max_jets: int
    out: Path
    plot: int
    device: str
    formats: tuple[str, ...] = ("png",)
    optimisation: Mapping[str, Any] = field(default_factory=dict)
    schema: JetSchema = CMS_HBB

    @classmethod
    def load(cls, config: str | Path = "prototype", **overrides: Any) -> "PrototypeSettings":
        """``configs/prototype.yml`` (or another YAML of its form) with the command line's ``overrides`` on top."""
        content = load_config(config)
        if not {"optimisation", "command"} <= set(content):
            raise InputError(f"{config}: a prototype config has the sections optimisation and command, as "
                             "configs/prototype.yml")
        values = {**content["command"], **{key: value for key, value in overrides.items() if value is not None}}
        refuse_unknown(values, ("model", "data", "tree", "target", "n", "seed", "max_jets", "output", "out", "plot",
                                "device", "pdf"), "prototype setting")
        for key in ("n", "max_jets"):
            if not isinstance(values[key], int) or values[key] < 1:
                raise InputError(f"--{key.replace('_', '-')} must be a positive integer, got {values[key]!r}")
        if not isinstance(values["plot"], int) or values["plot"] < 0:
            raise InputError(f"--plot must be 0 or a positive integer, got {values['plot']!r}")
        target = CMS_HBB.target_class(values["target"])
        if target == "predicted":
            raise InputError("a prototype needs one class to maximise: use --target hbb or qcd")
        return cls(model=str(bundled(values["model"])), data=tuple(str(bundled(path)) for path in values["data"]),
                   tree=values["tree"], target=int(target), n=int(values["n"]), seed=int(values["seed"]),
                   max_jets=int(values["max_jets"]), out=Path(values.get("out") or values["output"]),
                   plot=int(values["plot"]), device=str(values["device"]),
                   formats=("png", "pdf") if values.get("pdf") else ("png",),
                   optimisation=dict(content["optimisation"]))


@dataclass
class PrototypeRun:
    """What a run made: the prototypes, and the files it wrote."""

    prototypes: Prototypes
    root_file: Path
    friend_file: Path
    figures: list[Path]

    @property
    def confident(self) -> int:
        """How many prototypes reach :data:`CONFIDENT`."""
        return int((self.prototypes.scores >= CONFIDENT).sum())


def make_prototypes(settings: PrototypeSettings) -> PrototypeRun:
    """Read the real jets, make the prototypes, write them as an ntuple, explain and draw them."""
    model = load_tagger(settings.model, map_location=settings.device)
    real = read_root(list(settings.data), settings.tree, settings.max_jets)
    print(f"input: {real.report.summary()}", flush=True)
    made = prototype(model, real.jets, settings.target, settings.n, settings.seed, device=settings.device,
                     progress=True, **settings.optimisation)
    schema = settings.schema
    with writing_into(settings.out):
        root_file = write_jets(settings.out / PROTOTYPES_FILE, made.jets.cpu(), [settings.target] * settings.n,
                               schema, branches={
                                   "prototype_score": made.scores.cpu().numpy().astype(np.float32),
                                   "start_score": made.start_scores.cpu().numpy().astype(np.float32),
                                   "start_file": made.start.file_index.cpu().numpy().astype(np.int32),
                                   "start_entry": made.start.entry.cpu().numpy().astype(np.int64)},
                               tree=settings.tree)
    attribute = RunSettings.load("attribute", model=settings.model, data=[str(root_file)], tree=settings.tree,
                                 out=settings.out,
                                 target=schema.target_name(settings.target).lower(), plot=0, device=settings.device,
                                 seed=settings.seed, overwrite=True)
    (run,) = explain_sample(attribute)
    if run.failed:
        raise InputError(f"the prototypes could not be explained: {run.failed[0].reason}")
    friend_file = Path(run.files[0].output)
    figures = _draw(settings, made, root_file, friend_file, attribute)
    return PrototypeRun(made, root_file, friend_file, figures)


def _draw(settings: PrototypeSettings, made: Prototypes, root_file: Path, friend_file: Path,
          attribute: RunSettings) -> list[Path]:
    """The per-prototype figures (the first ``settings.plot``) and the summary of the moved features."""
    folder = settings.out / "figures"
    spread = made.manifold.spread.cpu().numpy()
    change = ((made.jets.x - made.start.x).cpu().numpy()) / spread
    batch = made.jets.batch.cpu().numpy()
    features = feature_labels(settings.schema.features)
    target_name = settings.schema.target_name(settings.target)
    pt_column = settings.schema.features.index(settings.schema.coordinates["pt"])
    reader = RootJetReader(root_file, settings.tree, schema=settings.schema)
    figures: list[Path] = []
    with writing_into(folder):
        for k in tqdm(range(min(settings.plot, settings.n)), desc="figures", unit="prototype", leave=False):
            table = read_friend_jets(friend_file, attribute.output_tree, [next(reader.chunks(0, k, k + 1))], "lrp",
                                     settings.schema)
            rows = batch == k
            title = (f"prototype {k} of {target_name} (LRP relevance for the {target_name} logit): "
                     f"p({target_name}) {float(made.start_scores[k]):.3g} -> {float(made.scores[k]):.3g}; "
                     f"from file {int(made.start.file_index[k])} entry {int(made.start.entry[k])}")
            figure = prototype_figure(change[rows], made.start.x[torch.from_numpy(rows)][:, pt_column].cpu().numpy(),
                                      features, table, 0, attribute.plots.coordinates,
                                      attribute.plots.edge_significance, title)
            figures += save_figure(figure, folder / f"prototype{k}", settings.formats)
        title = (f"what moved in {settings.n} prototypes of {target_name} "
                 f"({int((made.scores >= CONFIDENT).sum())} at p({target_name}) >= {CONFIDENT}), from the jets "
                 f"the model scores lowest for {target_name}")
        figures += save_figure(moved_features(change, batch, features, title), folder / "moved_features",
                               settings.formats)
    return figures
