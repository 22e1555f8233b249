"""The one interface through which hin_captum sees a jet tagger, and its adapter for any PyG-style graph model.

Every part that runs a model (the attribution methods, the LRP fronts, the metrics,
the pipeline, the benchmarks, the prototypes) asks a :class:`Tagger` what it needs,
instead of probing the model for attributes:

- :meth:`Tagger.logits`: the model on a batch of jets, with the fields its forward takes;
- :attr:`Tagger.level`: whether it gives one output per jet (``graph``) or per track (``node``);
- :meth:`Tagger.reference_point`: ``auto``'s reference in the layout of the explained
  input, where the model knows it (None: the engine finds the input BatchNorm itself);
- :meth:`Tagger.input_statistics`: each input feature's running mean and spread;
- :meth:`Tagger.jet_cost` and :attr:`Tagger.uses_edges`: what a jet costs in memory
  (pairs the model builds), and whether batches need the fully connected graph;
- :attr:`Tagger.relevance_at`, :meth:`Tagger.recording` and :meth:`Tagger.pair_relevance`:
  the relevance it gives beyond the tracks (ParT's particle pairs, ParticleNet's kNN edges).

Each model family implements it once: :class:`GraphModel` for graph models called as
``model(x, edge_index, ...)`` (the interaction network, the GAT tagger, PyG's
convolutions and models, a user's own), and the weaver adapters of
:mod:`hin_captum.models.weaver`. :func:`as_tagger` gives the tagger of any model.
"""
from __future__ import annotations

import inspect
from abc import ABC
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ..lrp.reference import INPUT_NORMS, Reference, is_auto, resolve_references
from ..util import InputError

GRAPH_FIELDS = ("batch", "edge_attr", "edge_weight", "edge_type", "pos", "node_type")
"""Fields of a PyG batch that a graph model's forward may take by name after ``x`` and ``edge_index``."""
LEVELS = ("graph", "node")


class Tagger(ABC):
    """What hin_captum needs to know of a jet tagger (see the module docstring); the defaults are those of a model
    that reads every track feature and builds nothing beyond the graph it is given."""

    network: nn.Module
    """The module whose layers get the rules (the model itself, or the module an adapter wraps)."""
    level: str = "graph"
    """``graph``: one output row per jet; ``node``: one per track."""
    relevance_at: tuple[str, ...] = ()
    """Modules (names in :attr:`network`) whose inputs LRP explains too, as the model's own pair inputs."""
    pair_names: tuple[str, ...] | None = None
    """The columns of :meth:`pair_relevance` when they are quantities of their own (ParT's pair features)."""
    pairs_are_inputs: bool = False
    """Whether :meth:`pair_relevance` is relevance of explained inputs (ParT's pair features, which then count in a
    jet's total) rather than relevance passing through pairs (edges)."""
    uses_edges: bool = True
    """Whether the model reads ``edge_index`` (batches then carry each jet's fully connected graph)."""

    def logits(self, x: Tensor, data: Batch) -> Tensor:
        """The model's output on the jets of ``data`` with track features ``x``."""
        return self.network(x, data.edge_index, **self.forward_fields(data))

    def forward_fields(self, data: Batch) -> dict[str, Tensor]:
        """The fields of ``data`` the forward takes by name after ``x`` and ``edge_index``."""
        return {"batch": data.batch}

    def reference_point(self, x: Tensor) -> Tensor | None:
        """``auto``'s reference for ``x``, broadcastable to it, or None where the engine finds it (the running mean
        of the BatchNorm that reads ``x``)."""
        return None

    def input_statistics(self, n_features: int) -> tuple[Tensor, Tensor]:
        """Each input feature's running mean and standard deviation (0 and 1 where the model has none)."""
        return torch.zeros(n_features), torch.ones(n_features)

    def jet_cost(self, tracks: np.ndarray) -> np.ndarray:
        """What each jet of ``tracks`` tracks costs, in pairs the model builds: ``n (n - 1)`` edges of a fully
        connected graph by default. Batches are bounded by their sum."""
        tracks = np.asarray(tracks, dtype=np.int64)
        return tracks * (tracks - 1)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """A block in which the model records what :meth:`pair_relevance` needs."""
        yield

    def pair_relevance(self, data: Batch, inner: Mapping[str, Any]) -> tuple[Tensor, Tensor] | None:
        """The pairs the model builds itself (ParticleNet's kNN edges, ParT's particle pairs) as ``edge_index``
        ``[2, E]`` into the tracks of ``data``, jet after jet, and the relevance through (or of) each ``[E, K]``,
        from a pass under :meth:`recording` whose ``relevance_at`` inputs are ``inner``; None for a model whose
        edges are those of ``data`` (read at its gathers) or that has none."""
        return None

    def arrays(self, x: Tensor, batch: Tensor) -> list[Tensor] | None:
        """The model's own input arrays of the jets (weaver's ``[jets, variables, particles]``), None for a graph
        model."""
        return None


class GraphModel(Tagger):
    """A graph model ``model(x, edge_index, ...)``: the fields its forward names (:data:`GRAPH_FIELDS`) are passed
    from the batch by name; ``level`` says whether it explains jets or tracks."""

    def __init__(self, model: nn.Module, level: str = "graph") -> None:
        if not isinstance(model, nn.Module):
            raise InputError(f"hin_captum explains torch modules, not a {type(model).__name__}")
        if level not in LEVELS:
            raise InputError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        self.network = model
        self.level = level
        self.fields = forward_fields(model)
        """The batch fields passed by name; None: the forward takes ``(x, edge_index, batch)`` positionally."""

    def logits(self, x: Tensor, data: Batch) -> Tensor:
        if self.fields is None:
            return self.network(x, data.edge_index, data.batch)
        return self.network(x, data.edge_index, **self.forward_fields(data))

    def forward_fields(self, data: Batch) -> dict[str, Tensor]:
        return {name: data[name] for name in self.fields or ("batch",) if name in data}

    def input_statistics(self, n_features: int) -> tuple[Tensor, Tensor]:
        parameter = next(self.network.parameters(), torch.zeros(()))
        probe = Batch.from_data_list([Data(x=parameter.new_ones((2, n_features)),
                                           edge_index=torch.tensor([[0, 1], [1, 0]], device=parameter.device))])
        (found,) = INPUT_NORMS.of(self.network, [probe.x], lambda xs: self.logits(xs[0], probe))
        if found is None or found.norm.running_mean is None or len(found.norm.running_mean) != n_features:
            return super().input_statistics(n_features)
        return found.norm.running_mean.detach().cpu(), found.spread().cpu()


def forward_fields(model: nn.Module) -> tuple[str, ...] | None:
    """The batch fields a graph model's forward takes by name after ``x`` and ``edge_index``; None when it names
    none (``*args``), and is then called as ``model(x, edge_index, batch)``."""
    parameters = list(inspect.signature(model.forward).parameters.values())
    named = [p.name for p in parameters[2:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    fields = tuple(name for name in named if name in GRAPH_FIELDS)
    return fields or None


def as_tagger(model: nn.Module | Tagger) -> Tagger:
    """The tagger of ``model``: itself if it implements :class:`Tagger`, else a :class:`GraphModel`."""
    return model if isinstance(model, Tagger) else GraphModel(model)


def jet_reference(spec: Reference, model: nn.Module | Tagger, data: Batch) -> Tensor:
    """The reference point of the track features of ``data`` for a tagger: under ``auto`` the tagger's own
    (:meth:`Tagger.reference_point`) where it knows it, else the running mean of the BatchNorm that reads them."""
    tagger = as_tagger(model)
    if is_auto(spec):
        own = tagger.reference_point(data.x)
        if own is not None:
            return own.to(data.x)
    (reference,) = resolve_references(spec, tagger.network, [data.x], lambda xs: tagger.logits(xs[0], data))
    return reference
