"""weaver-core's taggers (ParticleNet, ParticleTransformer) as weaver trains them: a network file, a data config
and a state dict; and :class:`GraphTagger`, the same model on jet graphs for the comparison harness.

weaver-core is an optional extra (``pip install -e ".[weaver]"``): it is imported here
only when a weaver model is asked for, and its absence is one clear line.

- :func:`load_weaver` loads a model as weaver's ``train.py`` does: the network file's
  ``get_model(data_config, **options)`` (the user's own code, imported as weaver imports
  it), the data config through weaver's own ``DataConfig``, and the state dict
  (``*_best_epoch_state.pt``, or a checkpoint holding one) with ``weights_only=True``.
- :class:`GraphTagger` feeds it jet graphs (``forward(x, edge_index, batch)``): each jet's
  tracks padded into weaver's ``[jets, variables, length]`` arrays from the graph's track
  columns, standardised and clipped as the data config says. The four-vectors are taken
  as constants (their pair features are explained where they enter the pair embedding,
  ``relevance_at``), so methods explain the track features.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

from ..data.schema import CMS_HBB, JetSchema
from ..util import InputError

INSTALL = 'pip install -e ".[weaver]" (or pip install --no-deps weaver-core==0.5.3 and its numba, vector)'
PAIR_EMBEDDING = "mod.pair_embed.embed"
"""Where ParT's pair features (from the four-vectors) enter its pair embedding, in the network files' wrapper."""


def weaver(module: str) -> Any:
    """A module of weaver-core, or one line that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise InputError(f"this needs weaver-core ({error}): {INSTALL}") from None


@dataclass
class WeaverModel:
    """A weaver-trained tagger: the network module's model, the data config it was trained with, and where from."""

    model: nn.Module
    data_config: Any
    """weaver's ``DataConfig``."""
    network: Path
    state: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model's arguments, in order: the data config's input groups."""
        return tuple(self.data_config.input_names)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes of the logits: the label branches, ``label_`` dropped (``label_H_bb`` -> ``H_bb``)."""
        return tuple(str(name).removeprefix("label_") for name in self.data_config.label_value)


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


def load_network(path: str | Path) -> Any:
    """The network file as weaver imports it (``import_module``): the user's own code, which defines ``get_model``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such network file: {path}")
    tools = weaver("weaver.utils.import_tools")
    module = tools.import_module(str(path), name="_network_module")
    if not callable(getattr(module, "get_model", None)):
        raise InputError(f"{path} defines no get_model(data_config, **kwargs): give a weaver network file")
    return module


def load_weaver(network: str | Path, data_config: str | Path, state: str | Path | None = None,
                map_location: str | torch.device = "cpu", **options: Any) -> WeaverModel:
    """The model of a weaver network file and data config, with the weights of ``state`` (weights only), in eval
    mode on ``map_location``. ``options`` are the network options (weaver's ``--network-option``)."""
    config = load_data_config(data_config)
    built = load_network(network).get_model(config, **options)
    model = built[0] if isinstance(built, tuple) else built
    if not isinstance(model, nn.Module):
        raise InputError(f"{network}: get_model returned {type(model).__name__}, not a torch module")
    if state is not None:
        model.load_state_dict(_state_dict(Path(state), model, map_location))
    return WeaverModel(model.to(torch.device(map_location)).eval(), config, Path(network),
                       None if state is None else Path(state), dict(options))


def _state_dict(path: Path, model: nn.Module, map_location: str | torch.device) -> dict[str, Tensor]:
    if not path.is_file():
        raise InputError(f"no such state dict: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for foreign or unsafe files
        raise InputError(f"{path} cannot be loaded as a weights-only state dict ({str(error).splitlines()[0]})") \
            from None
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not all(isinstance(value, Tensor) for value in payload.values()):
        raise InputError(f"{path} holds no state dict of tensors (weaver's *_best_epoch_state.pt)")
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(payload)), sorted(set(payload) - set(expected))
    mismatched = sorted(key for key in set(expected) & set(payload) if expected[key].shape != payload[key].shape)
    if missing or unexpected or mismatched:
        listed = lambda keys: ", ".join(keys[:3]) + (f" (and {len(keys) - 3} more)" if len(keys) > 3 else "")  # noqa
        problems = [f"{what} {listed(keys)}" for what, keys in (("missing keys", missing),
                                                                  ("unexpected keys", unexpected),
                                                                  ("mismatched shapes", mismatched)) if keys]
        raise InputError(f"{path} does not fit the network: {'; '.join(problems)}: give the state dict that was "
                         "trained with this network file and its options")
    return payload


FOUR_VECTOR = {
    "part_mask": "ak.ones_like(track_pt)",
    "part_px": "track_pt * np.cos(track_phirel)",
    "part_py": "track_pt * np.sin(track_phirel)",
    "part_pz": "track_pt * np.sinh(track_etarel)",
    "part_energy": "np.sqrt(track_pt**2 * np.cosh(track_etarel)**2 + track_mass**2)",
}
"""The new variables the graph interface computes (with these expressions in the data config)."""


class GraphTagger(nn.Module):
    """A weaver model on jet graphs: ``forward(x, edge_index, batch) -> logits``, for the comparison harness.

    ``x`` holds the schema's track columns; each data-config variable is a column (or a
    four-vector component of :data:`FOUR_VECTOR`), standardised and clipped as weaver
    does (``clip((x - center) * scale, min, max)`` where a center is given), padded with
    the pad value to the input length, the first tracks kept. The four-vectors are
    constants here (``relevance_at`` reads their pair features' relevance).
    """

    def __init__(self, weaver_model: WeaverModel, schema: JetSchema = CMS_HBB) -> None:
        super().__init__()
        self.tagger = weaver_model.model
        self.input_names = weaver_model.input_names
        config = weaver_model.data_config
        self.variables = {name: list(config.input_dicts[name]) for name in self.input_names}
        self.params = {name: dict(config.preprocess_params[name]) for names in self.variables.values()
                       for name in names}
        self.length = {name: int(config.input_shapes[name][2]) for name in self.input_names}
        columns = list(schema.features)
        expressions = {name: re.sub(r"\s+", "", str(expression)) for name, expression in
                       (config.var_funcs or {}).items()}
        self.column: dict[str, int] = {}
        for name in self.params:
            if name in columns:
                self.column[name] = columns.index(name)
            elif name not in FOUR_VECTOR or expressions.get(name) != re.sub(r"\s+", "", FOUR_VECTOR[name]):
                raise InputError(f"the graph interface takes variables that are track branches or "
                                 f"{', '.join(FOUR_VECTOR)} as defined in configs/weaver/toy_hbb.yaml, not '{name}'")
        self._coordinates = [columns.index(name) for name in ("track_pt", "track_etarel", "track_phirel",
                                                               "track_mass")]
        self._reference: Tensor | None = None
        """``auto``'s reference point, found on first use (:meth:`reference_point`)."""

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        return self.tagger(*self.inputs(x, batch))

    def inputs(self, x: Tensor, batch: Tensor | None = None) -> list[Tensor]:
        """The model's input arrays (``[jets, variables, length]`` each, in the data config's order) of the jets."""
        batch = x.new_zeros(len(x), dtype=torch.long) if batch is None else batch
        derived = self._four_vector(x.detach())
        arrays = []
        for group in self.input_names:
            columns = [derived[name] if name in derived else x[:, self.column[name]] for name in self.variables[group]]
            values = torch.stack([self._standardised(name, column) for name, column in
                                  zip(self.variables[group], columns)], 1)
            pad = self.params[self.variables[group][0]]["pad_value"]
            dense, _ = to_dense_batch(values, batch, fill_value=pad, max_num_nodes=self.length[group])
            arrays.append(dense.transpose(1, 2))
        return arrays

    def reference_point(self, x: Tensor) -> Tensor:
        """``auto``'s reference for the track columns: the running mean of the tagger's BatchNorm that reads the
        particle features, in raw units (weaver's standardisation undone), and zero in the columns it does not read.

        Found by one pass of the tagger on two dummy tracks, and kept.
        """
        if self._reference is None:
            from ..lrp.reference import InputNorms

            probe = self.inputs(x.detach()[:2], x.new_zeros(min(len(x), 2), dtype=torch.long))
            norms = InputNorms().of(self.tagger, probe, lambda arrays: self.tagger(*arrays))
            reference = x.new_zeros(x.shape[-1])
            for group, found in zip(self.input_names, norms):
                if found is None or found[0].running_mean is None or not self.variables[group]:
                    continue
                for name, mean in zip(self.variables[group], found[0].running_mean.detach()):
                    params = self.params[name]
                    raw = mean if params["center"] is None else mean / params["scale"] + params["center"]
                    if name in self.column:
                        reference[self.column[name]] = raw
            self._reference = reference
        return self._reference

    def _standardised(self, name: str, column: Tensor) -> Tensor:
        params = self.params[name]
        if params["center"] is None:
            return column
        return ((column - params["center"]) * params["scale"]).clamp(params["min"], params["max"])

    def _four_vector(self, x: Tensor) -> dict[str, Tensor]:
        pt, eta, phi, mass = (x[:, k] for k in self._coordinates)
        px, py, pz = pt * phi.cos(), pt * phi.sin(), pt * eta.sinh()
        return {"part_mask": torch.ones_like(pt), "part_px": px, "part_py": py, "part_pz": pz,
                "part_energy": (pt.pow(2) * eta.cosh().pow(2) + mass.pow(2)).sqrt()}

