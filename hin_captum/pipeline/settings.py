"""The settings of one attribution run: a YAML config (``configs/attribute.yml``), then the caller's overrides
(the command line's options), merged once into one checked :class:`RunSettings`.

The YAML file holds every default; nothing else does. Overrides use the command
line's names (``method``, ``epsilon``, ``chunk_size``, ``plot`` ...); None means "not
given". Everything is checked here, with one clear line for what is wrong, so the
rest of the run can take its settings as they are.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import bundled, load_config
from ..data.schema import CMS_HBB, JetSchema
from ..models.files import TaggerFiles, tagger_files
from ..lrp import LRPConfig
from ..methods import METHODS, takes_option
from ..util import InputError, refuse_unknown

LRP_FAMILY = "lrp"
"""Methods whose registry name starts with this take the LRP options."""
LRP_OPTIONS = tuple(name for name in LRPConfig.option_names() if name != "reference")
"""The LRP options a run may set (the reference point applies to every method that has one)."""
DATA_REFERENCE = "data"
"""Reference name of a run: the mean track of the sample, from one more pass over the inputs."""


@dataclass(frozen=True)
class PlotSettings:
    """What the run draws (the ``plots`` section of the config)."""

    jets: int
    """Per-jet plots for this many most confident Hbb jets; 0 for none (the summary's figures are always drawn)."""
    top_features: int
    """Relevance-vs-value panels of the summary for this many features of highest mean |R|."""
    edge_significance: float
    """In the 3D plot, a track pair is highlighted when its S_edge lies this many standard deviations above the
    mean of the jet's track pairs."""
    coordinates: Mapping[str, str]
    """Features drawn as ``eta``, ``phi`` and ``pt`` of the tracks (the schema's)."""
    formats: tuple[str, ...] = ("png",)


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a run reads, computes and writes."""

    files: TaggerFiles
    """The trained model's files (a checkpoint, or weaver's network file, data config and state dict)."""
    data: tuple[str, ...]
    methods: Mapping[str, Mapping[str, Any]]
    """Registry name -> options, in the order the methods run."""
    out: Path
    target: int | str
    """A class index or ``predicted``."""
    tree: str | None
    batch_size: int
    max_edges: int | None
    """At most this many edges (``n (n - 1)`` per jet of ``n`` tracks) in a batch; None: no bound."""
    step_size: int | str
    """Entries per chunk (a number) or a size of input per chunk (``"20 MB"``)."""
    max_jets: int | None
    device: str
    output_tree: str
    basket_entries: int
    overwrite: bool
    torch_copy: bool
    seed: int
    retries: int
    """A Dask run retries a failing unit this many times before giving up its file."""
    threads: int | None
    """PyTorch threads of the process (and of every Dask worker); None keeps PyTorch's choice."""
    plots: PlotSettings
    summary: Mapping[str, Any]
    """The summary's binning (``configs/summary.yml``)."""
    schema: JetSchema = field(default=CMS_HBB)
    command: str = ""

    @classmethod
    def load(cls, config: str | Path | Mapping[str, Any] = "attribute", **overrides: Any) -> "RunSettings":
        """The config (a name, a path or a mapping) with ``overrides`` on top, checked.

        Overrides: ``method`` (names separated by commas) or ``methods`` (name -> options), ``epsilon``,
        ``composite``, ``rules`` (``PATTERN=RULE`` texts), ``precision``, ``reference``, ``target`` (a name),
        ``model``, ``data``, ``tree``, ``batch_size``, ``chunk_size``, ``max_jets``, ``out``, ``device``,
        ``overwrite``, ``torch_copy``, ``plot`` (jets), ``pdf``, ``threads``, ``seed``, ``basket_entries``,
        ``command``.
        """
        values = dict(load_config(config) if not isinstance(config, Mapping) else config)
        given = {key: value for key, value in overrides.items() if value is not None}
        refuse_unknown(given, sorted(KNOWN_OVERRIDES), "run setting")

        def option(key: str, config_key: str | None = None) -> Any:
            return given[key] if key in given else values[config_key or key]

        network, data_config = given.get("network"), given.get("data_config")
        if network is not None and "model" not in given:
            raise InputError("--network needs --model: the state dict weaver saved (*_best_epoch_state.pt)")
        files = tagger_files(
            given.get("model") or bundled(values["model"]),
            network=None if network is None else bundled(network),
            data_config=None if data_config is None else bundled(data_config),
            options=_network_options(given.get("network_option", ())),
            constant_groups=None if "constant_groups" not in given else [
                name.strip() for name in str(given["constant_groups"]).split(",") if name.strip()],
            schema=given.get("schema", CMS_HBB))
        schema = files.schema(given.get("tree"))
        methods = _methods(given, values)
        plots = values["plots"]
        return cls(
            files=files,
            data=tuple(map(str, given.get("data") or [bundled(path) for path in values["data"]])),
            methods=methods,
            out=_output_folder(option("out", "output")),
            target=schema.target_class(option("target")),
            tree=option("tree"),
            batch_size=_positive("the batch size", option("batch_size")),
            max_edges=_edge_budget(option("max_edges")),
            step_size=_chunk_size(option("chunk_size")),
            max_jets=None if option("max_jets") is None else _positive("--max-jets", option("max_jets")),
            device=str(torch_device(option("device"))),
            output_tree=str(values["output_tree"]),
            basket_entries=_positive("basket_entries", option("basket_entries")),
            overwrite=bool(given.get("overwrite", False)),
            torch_copy=bool(given.get("torch_copy", False)),
            seed=int(option("seed")),
            retries=int(values["retries"]),
            threads=None if "threads" not in given else _positive("--threads", given["threads"]),
            plots=PlotSettings(
                jets=int(given["plot"] if "plot" in given else plots["jets"]),
                top_features=int(plots["top_features"]), edge_significance=float(plots["edge_significance"]),
                coordinates=dict(schema.coordinates), formats=("png", "pdf") if given.get("pdf") else ("png",)),
            summary=load_config(values.get("summary", "summary")),
            schema=schema,
            command=str(given.get("command", "")),
        )


def _edge_budget(value: Any) -> int | None:
    """``--max-edges``: a positive number of edges, or none (null in YAML) for no bound."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    try:
        return _positive("--max-edges", int(value))
    except (TypeError, ValueError):
        raise InputError(f"--max-edges must be a positive number of edges or none, got {value!r}") from None


KNOWN_OVERRIDES = frozenset({
    "method", "methods", *LRP_OPTIONS, "reference", "target", "model", "data", "tree", "batch_size", "chunk_size",
    "max_jets", "out", "device", "overwrite", "torch_copy", "plot", "pdf", "threads", "seed", "basket_entries",
    "command", "schema", "network", "data_config", "network_option", "constant_groups", "max_edges",
})


def _network_options(items: Sequence[Sequence[str]] | Mapping[str, Any]) -> dict[str, Any]:
    """weaver's ``--network-option KEY VALUE`` pairs, each value a Python literal (as weaver reads them)."""
    import ast

    if isinstance(items, Mapping):
        return dict(items)
    options = {}
    for key, value in items:
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def _methods(given: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each method's options: the config's, then the LRP options for the LRP family, then the reference."""
    configured = values.get("methods") or {}
    if "methods" in given:
        names = list(given["methods"])
        configured = {name: {**configured.get(name, {}), **given["methods"][name]} for name in names}
    else:
        names = parse_methods(given.get("method", values["method"]))
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise InputError(f"unknown method '{','.join(unknown) or ''}': use one or more of "
                         f"{', '.join(sorted(METHODS))}, separated by commas")
    lrp = {key: given[key] for key in LRP_OPTIONS if key in given and given[key] not in ({}, [], ())}
    if "rules" in lrp and not isinstance(lrp["rules"], Mapping):
        lrp["rules"] = parse_rules(lrp["rules"])
    if lrp and not any(name.startswith(LRP_FAMILY) for name in names):
        family = ", ".join(sorted(name for name in METHODS if name.startswith(LRP_FAMILY)))
        raise InputError(f"{', '.join(sorted(lrp))} only apply to the LRP methods ({family}), "
                         f"not to {', '.join(names)}")
    reference = given.get("reference", values.get("reference"))
    measured = [name for name in names if takes_option(name, "reference")]
    if "reference" in given and not measured:
        takers = ", ".join(sorted(name for name in METHODS if takes_option(name, "reference")))
        raise InputError(f"--reference only applies to methods that measure from a reference point ({takers}), "
                         f"not to {', '.join(names)}")
    options = {name: {**configured.get(name, {}), **(lrp if name.startswith(LRP_FAMILY) else {})} for name in names}
    for name in measured:
        if reference is not None:
            options[name]["reference"] = reference
    for name, chosen in options.items():  # refuse a bad option now, not after the model is loaded
        refuse_unknown(chosen, METHODS[name].option_names(), f"method '{name}' option")
        if name.startswith(LRP_FAMILY):
            LRPConfig.of({key: value for key, value in chosen.items() if key in LRPConfig.option_names()
                          and not (key == "reference" and value == DATA_REFERENCE)}, f"method '{name}'")
    return options


def parse_methods(text: str) -> list[str]:
    """Registry names from ``"lrp,ig"``, each once, in the order given."""
    return list(dict.fromkeys(name.strip() for name in str(text).split(",") if name.strip()))


def parse_rules(items: Sequence[str] | str) -> dict[str, str]:
    """LRP rule overrides from ``["bn=pass,*global_mlp.0=gamma:0.5", ...]``: module-name pattern -> rule."""
    rules = {}
    for item in (part.strip() for text in ([items] if isinstance(items, str) else items) for part in text.split(",")):
        pattern, separator, rule = item.partition("=")
        if not separator or not pattern.strip() or not rule.strip():
            raise InputError(f"LRP rule '{item}' is not PATTERN=RULE "
                             "(for example 'bn=pass' or '*edge_mlp.0=gamma:0.25')")
        rules[pattern.strip()] = rule.strip()
    return rules


def torch_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; cuda only where PyTorch sees a CUDA device."""
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device '{name}': use cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device cuda, but PyTorch {torch.__version__} sees no CUDA device here: use --device cpu")
    return torch.device(name)


def _positive(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what} must be a whole number of at least 1, got {value!r}")
    return value


def _chunk_size(value: int | str) -> int | str:
    """Entries per chunk (a number) or a size such as ``20 MB``."""
    text = str(value).strip()
    return _positive("the chunk size", int(text)) if text.lstrip("-").isdigit() else text


def _output_folder(value: str | Path) -> Path:
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: give a folder")
    return out
