"""The reference point ``x0`` that input relevance is measured from.

Relevance of a raw input feature says how much its departure from ``x0`` moved
the explained output: LRP gives ``(x - x0) * gradient``, Integrated Gradients
integrates from ``x0``, and the deletion metrics set removed features to ``x0``.
By default (``"auto"``) ``x0`` is the running mean of the BatchNorm that reads the
input (the average track the model was trained around); a model without one is
measured from zero. ``"zero"``, a number, a tensor (``[F]`` or the input's shape)
or :func:`track_mean` of some jets may be given instead.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union
from weakref import WeakKeyDictionary

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..util import InputError
from .tracing import input_index, laid_out_from

Reference = Union[str, float, Tensor]
"""``"auto"``, ``"zero"``, a number, or a tensor broadcastable to the input."""
REFERENCES = ("auto", "zero")
"""The references that have a name."""


def structure(model: nn.Module) -> tuple:
    """The names and types of ``model``'s modules: what caches keyed on a model check before they are reused."""
    return tuple((name, type(module)) for name, module in model.named_modules())


class InputNorms:
    """For every explained input, the ``BatchNorm1d`` (or ``2d``) that reads it: directly, a clone or cast of it,
    or its values padded into a dense batch or permuted (:func:`~hin_captum.lrp.tracing.laid_out_from`).

    Found by one forward pass per model and module structure, and kept by this
    object (weakly, by the model's identity): its owner (an engine, a method) makes
    that pass once.
    """

    def __init__(self) -> None:
        self._found: "WeakKeyDictionary[nn.Module, tuple[tuple, tuple[tuple[str, bool] | None, ...]]]" = \
            WeakKeyDictionary()

    def of(self, model: nn.Module, inputs: Sequence[Tensor], run: Callable[[tuple[Tensor, ...]], object]
           ) -> list[tuple[nn.Module, bool] | None]:
        """The norm of each of ``inputs`` for ``run(inputs)``, a call of ``model``, and whether it reads the input's
        dimension 1 as its features (channels first)."""
        key = structure(model)
        kept = self._found.get(model)
        if kept is None or kept[0] != key or len(kept[1]) != len(inputs):
            kept = (key, _find_input_norms(model, inputs, run))
            self._found[model] = kept
        modules = dict(model.named_modules())
        return [None if item is None else (modules[item[0]], item[1]) for item in kept[1]]


def _find_input_norms(model: nn.Module, inputs: Sequence[Tensor], run: Callable[[tuple[Tensor, ...]], object]
                      ) -> tuple[tuple[str, bool] | None, ...]:
    probes = tuple(x.detach().requires_grad_() for x in inputs)  # with a history, so clones and casts are seen
    found: list[tuple[str, bool] | None] = [None] * len(inputs)

    def record(name: str, module: nn.Module, args: tuple) -> None:
        a = args[0] if args else None
        index = laid_out_from(a, probes)
        if index is not None and found[index] is None:
            found[index] = (name, a.dim() > 2 and input_index(a, probes) is not None)

    handles = [module.register_forward_pre_hook(lambda m, args, name=name: record(name, m, args))
               for name, module in model.named_modules() if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d))]
    try:
        with torch.enable_grad():
            run(probes)
    finally:
        for handle in handles:
            handle.remove()
    return tuple(found)


def resolve_references(
    spec: Reference | Sequence[Reference],
    model: nn.Module,
    inputs: Sequence[Tensor],
    run: Callable[[tuple[Tensor, ...]], object],
    norms: InputNorms | None = None,
) -> tuple[Tensor, ...]:
    """The reference point of every input, broadcastable to it, from a spec (or one spec per input).

    ``norms`` keeps the input BatchNorms found for ``auto`` (without it, each call looks again). A model that
    builds its own inputs from the explained ones (:class:`~hin_captum.models.weaver.GraphTagger`) says where
    ``auto`` is with ``reference_point(x)``.
    """
    specs = list(spec) if isinstance(spec, (list, tuple)) else [spec] * len(inputs)
    if len(specs) != len(inputs):
        raise InputError(f"give one reference for all inputs or one per input ({len(inputs)}), got {len(specs)}")
    own = getattr(model, "reference_point", None)
    if own is not None and len(inputs) == 1 and _is_auto(specs[0]):
        return (own(inputs[0]).to(inputs[0]),)
    found = (norms or InputNorms()).of(model, inputs, run) if any(_is_auto(item) for item in specs) \
        else [None] * len(inputs)
    return tuple(_reference(item, x, norm) for item, x, norm in zip(specs, inputs, found))


def _mean_of(found: tuple[nn.Module, bool] | None, x: Tensor) -> Tensor:
    """The running mean of the input's BatchNorm, shaped to broadcast against ``x`` (``[C, 1, ...]`` when the
    norm reads ``x``'s dimension 1), or zero without one."""
    if found is None or found[0].running_mean is None:
        return x.new_zeros(x.shape[-1:])
    norm, channels_first = found
    mean = norm.running_mean.detach().to(device=x.device, dtype=x.dtype)
    return mean.view(-1, *[1] * (x.dim() - 2)) if channels_first else mean


def resolve_reference(spec: Reference, model: nn.Module, data: Data, norms: InputNorms | None = None) -> Tensor:
    """The reference point of the node features of a graph model ``model(x, edge_index, batch)``."""
    batch = getattr(data, "batch", None)
    (reference,) = resolve_references(spec, model, [data.x], lambda xs: model(xs[0], data.edge_index, batch), norms)
    return reference


def _is_auto(spec: object) -> bool:
    return isinstance(spec, str) and spec.strip().lower() == "auto"


def _reference(spec: Reference, x: Tensor, norm: tuple[nn.Module, bool] | None) -> Tensor:
    if isinstance(spec, Tensor):
        reference = spec.detach().to(device=x.device, dtype=x.dtype)
        try:
            torch.broadcast_shapes(reference.shape, x.shape)
        except RuntimeError:
            raise InputError(f"a reference of shape {tuple(reference.shape)} does not fit inputs of shape "
                             f"{tuple(x.shape)}: give one value per feature ({x.shape[-1]}) or per input element") \
                from None
        return reference
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return torch.full(x.shape[-1:], float(spec), dtype=x.dtype, device=x.device)
    name = spec.strip().lower() if isinstance(spec, str) else None
    if name == "zero":
        return x.new_zeros(x.shape[-1:])
    if name == "auto":
        return _mean_of(norm, x)
    raise InputError(f"unknown reference {spec!r}: use {', '.join(REFERENCES)}, a number or a tensor "
                     "(for example hin_captum.lrp.track_mean(jets))")


def track_mean(jets: Sequence[Data] | Data) -> Tensor:
    """The mean of every feature over all tracks of ``jets``: a reference computed from data."""
    graphs = [jets] if isinstance(jets, Data) else list(jets)
    if not graphs:
        raise InputError("track_mean needs at least one jet")
    total = sum(graph.x.double().sum(0) for graph in graphs)
    count = sum(graph.x.shape[0] for graph in graphs)
    if count == 0:
        raise InputError("track_mean needs at least one track")
    return (total / count).to(graphs[0].x.dtype)
