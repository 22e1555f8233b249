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
from dataclasses import dataclass
from typing import Union
from weakref import WeakKeyDictionary

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..util import InputError
from .tracing import laid_out_from

Reference = Union[str, float, Tensor]
"""``"auto"``, ``"zero"``, a number, or a tensor broadcastable to the input."""
REFERENCES = ("auto", "zero")
"""The references that have a name."""


def structure(model: nn.Module) -> tuple:
    """The names and types of ``model``'s modules: what caches keyed on a model check before they are reused."""
    return tuple((name, type(module)) for name, module in model.named_modules())


@dataclass(frozen=True)
class InputNorm:
    """The BatchNorm that reads an explained input, and which dimension of that input holds its channels."""

    norm: nn.Module
    axis: int
    """The input's dimension that the norm's channels run along (1 for ``[N, C, P]``, -1 for ``[N, F]``), counted
    from the end, so it holds for any batch size and sequence length: ``-1`` is the last dimension."""

    def mean_like(self, x: Tensor) -> Tensor:
        """The norm's running mean, shaped to broadcast against ``x``."""
        mean = self.norm.running_mean.detach().to(device=x.device, dtype=x.dtype)
        return mean.view(-1, *[1] * (-self.axis - 1))

    def spread(self) -> Tensor:
        """The norm's running standard deviation, one value per channel."""
        return (self.norm.running_var.detach() + self.norm.eps).sqrt()


class InputNorms:
    """For every explained input, the ``BatchNorm1d`` (or ``2d``) that reads it: directly, a clone or cast of it,
    or its values padded, trimmed or permuted (:func:`~hin_captum.lrp.tracing.laid_out_from`), with the input
    dimension its channels run along.

    Found by one forward pass per model and module structure, and kept by this
    object (weakly, by the model's identity): its owner (an engine, a method) makes
    that pass once. The layout is read from the input itself (where the norm's
    channels come from), not from the tensor the norm happens to see on that pass, so
    a model that trims its padding on some calls (weaver's ``SequenceTrimmer``) gets
    the same reference on every call.
    """

    def __init__(self) -> None:
        self._found: "WeakKeyDictionary[nn.Module, tuple[tuple, tuple[tuple[str, int] | None, ...]]]" = \
            WeakKeyDictionary()

    def of(self, model: nn.Module, inputs: Sequence[Tensor], run: Callable[[tuple[Tensor, ...]], object]
           ) -> list[InputNorm | None]:
        """The norm of each of ``inputs`` for ``run(inputs)``, a call of ``model``."""
        key = structure(model)
        kept = self._found.get(model)
        if kept is None or kept[0] != key or len(kept[1]) != len(inputs):
            kept = (key, _find_input_norms(model, inputs, run))
            self._found[model] = kept
        modules = dict(model.named_modules())
        return [None if item is None else InputNorm(modules[item[0]], item[1]) for item in kept[1]]


INPUT_NORMS = InputNorms()
"""The input norms of every model seen in this process, kept weakly by the model's identity and found again when
its modules change: the norm a model's input meets is a property of the model, so every front (a method made
per call by ``hin_captum.attribute``, ``LRP``, IG) finds it once instead of with an extra pass per call."""


def _find_input_norms(model: nn.Module, inputs: Sequence[Tensor], run: Callable[[tuple[Tensor, ...]], object]
                      ) -> tuple[tuple[str, int] | None, ...]:
    probes = tuple(x.detach().requires_grad_() for x in inputs)  # with a history, so clones and casts are seen
    seen: list[tuple[str, Tensor] | None] = [None] * len(inputs)

    def record(name: str, module: nn.Module, args: tuple) -> None:
        a = args[0] if args else None
        index = laid_out_from(a, probes)
        if index is not None and seen[index] is None:
            seen[index] = (name, a)

    handles = [module.register_forward_pre_hook(lambda m, args, name=name: record(name, m, args))
               for name, module in model.named_modules() if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d))]
    try:
        with torch.enable_grad():
            run(probes)
    finally:
        for handle in handles:
            handle.remove()
    return tuple(None if item is None else _channel_axis(item[0], item[1], probe)
                 for item, probe in zip(seen, probes))


def _channel_axis(name: str, a: Tensor, x: Tensor) -> tuple[str, int] | None:
    """Which dimension of the input ``x`` the channels of the norm's input ``a`` (its dimension 1) come from.

    The channel numbers ``1..C`` are sent back from ``a`` to ``x`` (layout changes only move values): the
    dimension of ``x`` along which they are laid out, wherever they arrive, is the channels' dimension.
    """
    channels = a.shape[1]
    numbers = torch.arange(1, channels + 1, dtype=a.dtype, device=a.device).view(1, -1, *[1] * (a.dim() - 2))
    (back,) = torch.autograd.grad(a, x, numbers.expand_as(a), allow_unused=True)
    if back is None:
        return None
    arrived = back != 0
    for axis in range(-1, -x.dim() - 1, -1):
        if x.shape[axis] != channels:
            continue
        expected = torch.arange(1, channels + 1, dtype=back.dtype, device=back.device).view(-1, *[1] * (-axis - 1))
        if arrived.any() and bool((back == expected.expand_as(back))[arrived].all()):
            return name, axis
    return None


def resolve_references(
    spec: Reference | Sequence[Reference],
    model: nn.Module,
    inputs: Sequence[Tensor],
    run: Callable[[tuple[Tensor, ...]], object],
    norms: InputNorms | None = None,
) -> tuple[Tensor, ...]:
    """The reference point of every input, broadcastable to it, from a spec (or one spec per input).

    ``norms`` keeps the input BatchNorms found for ``auto`` (by default :data:`INPUT_NORMS`). A tagger that knows
    its own reference (:meth:`~hin_captum.models.tagger.Tagger.reference_point`) passes it as a tensor instead.
    """
    specs = list(spec) if isinstance(spec, (list, tuple)) else [spec] * len(inputs)
    if len(specs) != len(inputs):
        raise InputError(f"give one reference for all inputs or one per input ({len(inputs)}), got {len(specs)}")
    found = (norms or INPUT_NORMS).of(model, inputs, run) if any(is_auto(item) for item in specs) \
        else [None] * len(inputs)
    return tuple(_reference(item, x, norm) for item, x, norm in zip(specs, inputs, found))


def _mean_of(found: InputNorm | None, x: Tensor) -> Tensor:
    """The running mean of the input's BatchNorm, shaped to broadcast against ``x``, or zero without one."""
    if found is None or found.norm.running_mean is None:
        return x.new_zeros(x.shape[-1:])
    return found.mean_like(x)


def is_auto(spec: object) -> bool:
    """Whether a reference spec is ``auto`` (the input BatchNorm's running mean)."""
    return isinstance(spec, str) and spec.strip().lower() == "auto"


def _reference(spec: Reference, x: Tensor, norm: InputNorm | None) -> Tensor:
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
