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

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.utils import to_dense_batch

from ..data.schema import CMS_HBB, JetSchema
from ..data.weaver import WeaverJetReader, load_data_config, weaver, weaver_schema
from ..lrp.reference import INPUT_NORMS
from ..util import InputError, file_digest
from .files import TaggerFiles
from .tagger import Tagger

PAIR_EMBEDDING = "mod.pair_embed.embed"
PAIR_FEATURES = ("lndelta", "lnkt", "lnz", "lnm2")
"""ParT's pair features from the four-vectors, in its order (``pairwise_lv_fts_pp``): ln ΔR, ln kT, ln z, ln m^2."""
"""Where ParT's pair features (from the four-vectors) enter its pair embedding, in the network files' wrapper."""


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


class GraphTagger(nn.Module, Tagger):
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

    uses_edges = False

    @property
    def network(self) -> nn.Module:
        return self

    def forward(self, x: Tensor, edge_index: Tensor | None = None, batch: Tensor | None = None) -> Tensor:
        return self.tagger(*self.arrays(x, batch))

    def arrays(self, x: Tensor, batch: Tensor | None = None) -> list[Tensor]:
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
            probe = self.arrays(x.detach()[:2], x.new_zeros(min(len(x), 2), dtype=torch.long))
            norms = INPUT_NORMS.of(self.tagger, probe, lambda arrays: self.tagger(*arrays))
            reference = x.new_zeros(x.shape[-1])
            for group, found in zip(self.input_names, norms):
                if found is None or found.norm.running_mean is None or not self.variables[group]:
                    continue
                for name, mean in zip(self.variables[group], found.norm.running_mean.detach()):
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



class InputsTagger(nn.Module, Tagger):
    """A weaver model on the track matrices of :class:`~hin_captum.data.weaver.WeaverJetReader`: the columns of
    ``x`` are the data config's variables (already standardised by weaver), group after group; each group is
    padded back into weaver's ``[jets, variables, length]`` array and the model called on them all.

    The groups in ``constant`` (by default the masks and the four-vectors: ``*_mask``, ``*_vectors``) carry no
    relevance of their own; ParT's pair features from the four-vectors are explained where they enter its pair
    embedding (:attr:`relevance_at`), ParticleNet's kNN edges at the gather of its first EdgeConv block
    (:meth:`pair_relevance`).
    """

    def __init__(self, weaver_model: WeaverModel, constant: Sequence[str] | None = None) -> None:
        super().__init__()
        self.tagger = weaver_model.model
        config = weaver_model.data_config
        self.input_names = weaver_model.input_names
        self.widths = [len(config.input_dicts[group]) for group in self.input_names]
        self.length = int(config.input_shapes[self.input_names[0]][2])
        self.pad = [float(config.preprocess_params[config.input_dicts[group][0]]["pad_value"])
                    for group in self.input_names]
        self.constant = set(constant) if constant is not None else {
            group for group in self.input_names if group.endswith("_mask") or group.endswith("_vectors")}
        unknown = self.constant - set(self.input_names)
        if unknown:
            raise InputError(f"no input group {', '.join(sorted(unknown))} in the data config: its groups are "
                             f"{', '.join(self.input_names)}")
        modules = dict(self.tagger.named_modules())
        pair_embedding = next((name for name in ("mod.pair_embed.embed", "pair_embed.embed") if name in modules),
                              None)
        self.relevance_at = (f"tagger.{pair_embedding}",) if pair_embedding else ()
        """Where LRP reads more relevance: ParT's pair embedding input (its pair features)."""
        self.pairs_are_inputs = pair_embedding is not None
        if pair_embedding is not None:
            dimension = modules[pair_embedding.removesuffix(".embed")].pairwise_lv_dim
            self.pair_names = PAIR_FEATURES[:dimension] if dimension <= len(PAIR_FEATURES) else None
            """The pair features of :meth:`pair_relevance`'s columns (ParT's ``pairwise_lv_fts``)."""
        self._knn_block = next((modules[name] for name in ("mod.edge_convs.0", "edge_convs.0") if name in modules),
                               None)
        self._gathers: list[tuple[Tensor, Tensor, list[Tensor]]] = []
        self._capturing = False
        self._statistics: tuple[Tensor, Tensor] | None = None

    uses_edges = False

    @property
    def network(self) -> nn.Module:
        return self

    def forward(self, x: Tensor, edge_index: Tensor | None = None, batch: Tensor | None = None) -> Tensor:
        arrays = self.arrays(x, batch)
        if not self._capturing or self._knn_block is None:
            return self.tagger(*arrays)
        with _FirstGather(self._knn_block, self._gathers):
            return self.tagger(*arrays)

    def jet_cost(self, tracks: np.ndarray) -> np.ndarray:
        """Particle pairs the model builds per jet: ``n^2`` for ParT's pair features, ``n k`` for ParticleNet's
        kNN edges (``n`` at most the input length), ``n`` for a model of neither."""
        n = np.minimum(np.asarray(tracks, dtype=np.int64), self.length)
        if self.pairs_are_inputs:
            return n * n
        return n * int(self._knn_block.k) if self._knn_block is not None else n

    def arrays(self, x: Tensor, batch: Tensor | None = None) -> list[Tensor]:
        """weaver's arrays of the jets (``[jets, variables, length]``, in the data config's order)."""
        batch = x.new_zeros(len(x), dtype=torch.long) if batch is None else batch
        arrays, start = [], 0
        for group, width, pad in zip(self.input_names, self.widths, self.pad):
            values = x[:, start:start + width]
            start += width
            if group.endswith("_mask"):  # every node is a real particle, whatever a perturbation did to the column
                values = torch.ones_like(values.detach())
            elif group in self.constant:
                values = values.detach()
            dense, _ = to_dense_batch(values, batch, fill_value=pad, max_num_nodes=self.length)
            arrays.append(dense.transpose(1, 2))
        return arrays

    def reference_point(self, x: Tensor) -> Tensor:
        """``auto``'s reference ``[tracks, columns]``: the running mean of the BatchNorm that reads each explained
        group (zero where none does), and the tracks' own values in the constant groups (a mask, the four-vectors),
        which a deletion then leaves as they are."""
        reference = self.input_statistics(x.shape[1])[0].to(x).expand_as(x).clone()
        start = 0
        for group, width in zip(self.input_names, self.widths):
            if group in self.constant:
                reference[:, start:start + width] = x.detach()[:, start:start + width]
            start += width
        return reference

    def input_statistics(self, n_features: int | None = None) -> tuple[Tensor, Tensor]:
        """Per column of ``x``: the running mean and standard deviation of the BatchNorm that reads its group
        (0 and 1 where none does). Found by one pass of the tagger on two dummy tracks, and kept."""
        if self._statistics is None:
            parameter = next(self.tagger.parameters())
            probe = self.arrays(parameter.new_ones((2, sum(self.widths))), parameter.new_zeros(2, dtype=torch.long))
            norms = INPUT_NORMS.of(self.tagger, probe, lambda arrays: self.tagger(*arrays))
            mean, spread, start = parameter.new_zeros(sum(self.widths)), parameter.new_ones(sum(self.widths)), 0
            for width, found in zip(self.widths, norms):
                norm = None if found is None else found.norm
                if norm is not None and norm.running_mean is not None and len(norm.running_mean) == width:
                    mean[start:start + width] = norm.running_mean.detach()
                    spread[start:start + width] = (norm.running_var.detach() + norm.eps).sqrt()
                start += width
            self._statistics = (mean, spread)
        return self._statistics

    @contextmanager
    def recording(self) -> Iterator[None]:
        """A block in which the model records what :meth:`pair_relevance` needs (ParticleNet's kNN gather)."""
        self._gathers.clear()
        self._capturing = True
        try:
            yield
        finally:
            self._capturing = False

    def pair_relevance(self, data: Batch, inner: Mapping[str, Any]) -> tuple[Tensor, Tensor] | None:
        """The model's own particle pairs in the jets of ``data`` (node indices of ``data``, real particles only,
        jet after jet) and their relevance:

        - ParT: each pair of distinct particles, in both directions, with half the relevance of the pair's features
          where they enter the pair embedding ``[E, pair features]`` (a particle's pair with itself is no edge);
        - ParticleNet: each kNN edge (neighbour -> centre) of its first EdgeConv block, value x gradient at its
          gather summed over features ``[E, 1]``.
        """
        counts = torch.bincount(data.batch, minlength=data.num_graphs).clamp(max=self.length)
        first = data.ptr[:-1]
        if self.pairs_are_inputs and self.relevance_at[0] in inner:
            (pairs,) = inner[self.relevance_at[0]]
            jet, i, j = _tril_pairs(counts)
            relevance = pairs.relevance[0].T  # [pairs, pair features], in the order of _tril_pairs
            distinct = i != j
            jet, i, j, half = jet[distinct], i[distinct], j[distinct], relevance[distinct] / 2
            src = torch.cat([first[jet] + i, first[jet] + j])
            dst = torch.cat([first[jet] + j, first[jet] + i])
            values = torch.cat([half, half])
        elif self._knn_block is not None and self._gathers and self._gathers[0][2]:
            value, index, gradients = self._gathers[0]
            per_gather = (value * gradients[0]).sum(1)  # [jets * points * k]
            k = int(self._knn_block.k)
            points = len(per_gather) // (data.num_graphs * k)  # the length weaver's trimmer kept (<= self.length)
            if points * data.num_graphs * k != len(per_gather) or points > self.length:
                raise RuntimeError(f"ParticleNet's first EdgeConv gathered {len(per_gather)} rows, not jets x "
                                   f"points x k ({data.num_graphs} x {self.length} or fewer x {k})")
            centre = torch.arange(len(per_gather), device=per_gather.device) // k  # jet * points + position
            jet, centre_position, neighbour_position = centre // points, centre % points, index % points
            real = (centre_position < counts[jet]) & (neighbour_position < counts[jet])
            jet = jet[real]
            src, dst = first[jet] + neighbour_position[real], first[jet] + centre_position[real]
            values = per_gather[real, None]
        else:
            return None
        order = torch.argsort(data.batch[src], stable=True)
        return torch.stack([src, dst])[:, order], values[order]


def _tril_pairs(counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(jet, i, j)`` of every pair ``i >= j`` of real particles, in the order of ParT's sparse pair embedding
    (``pair_mask.tril().nonzero()``)."""
    length = int(counts.max()) if len(counts) else 0
    position = torch.arange(length, device=counts.device)
    real = position[None, :] < counts[:, None]
    pair = (real[:, :, None] & real[:, None, :]).tril()
    jet, i, j = pair.nonzero(as_tuple=True)
    return jet, i, j


class _FirstGather:
    """Records the first row gather by an index tensor inside ``module``'s forward (ParticleNet's kNN features):
    the gathered values, the index, and (filled in the backward pass) their gradient."""

    def __init__(self, module: nn.Module, records: list) -> None:
        self.module, self.records = module, records
        self._handle = None

    def __enter__(self) -> "_FirstGather":
        from torch.overrides import TorchFunctionMode

        records = self.records
        active = {"inside": False}

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if active["inside"] and not records and func is Tensor.__getitem__ and isinstance(args[1], tuple) \
                        and isinstance(args[1][0], Tensor) and args[1][0].dim() == 1 and isinstance(out, Tensor) \
                        and out.requires_grad:
                    gradients: list[Tensor] = []
                    records.append((out.detach(), args[1][0], gradients))
                    out.register_hook(lambda grad: gradients.append(grad.detach()))
                return out

        self._pre = self.module.register_forward_pre_hook(lambda m, a: active.update(inside=True))
        self._post = self.module.register_forward_hook(lambda m, a, o: active.update(inside=False))
        self._mode = Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._mode.__exit__(*exc_info)
        self._pre.remove()
        self._post.remove()


@dataclass(frozen=True)
class WeaverFiles(TaggerFiles):
    """A weaver-trained tagger's files: network file, data config, state dict and network options; its inputs are
    read as weaver builds them (:class:`~hin_captum.data.weaver.WeaverJetReader`), the groups in
    ``constant_groups`` (default: masks and four-vectors) carry no relevance."""

    network: str
    data_config: str
    state: str
    options: Mapping[str, Any] = field(default_factory=dict)
    constant_groups: tuple[str, ...] | None = None

    def load(self, device: torch.device) -> Tagger:
        model = load_weaver(self.network, self.data_config, self.state, map_location=device, **dict(self.options))
        return InputsTagger(model, self.constant_groups)

    def reader(self, data: Sequence[str], tree: str | None, step_size: int | str) -> WeaverJetReader:
        return WeaverJetReader(list(data), load_data_config(self.data_config), tree, step_size=step_size)

    def schema(self, tree: str | None) -> JetSchema:
        return weaver_schema(load_data_config(self.data_config), tree)

    def digest(self) -> str:
        return "+".join(file_digest(path) for path in (self.state, self.network, self.data_config))
