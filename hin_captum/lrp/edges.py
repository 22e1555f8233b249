"""Edge relevance: value x LRP gradient at every gather of node features by ``edge_index``.

Message passing reads node features per edge with ``x[edge_index[0]]``,
``x[edge_index[1]]`` or ``index_select``. Those gathers are parameter-free and pass
relevance on exactly, so the relevance that flows through edge ``e`` is the gathered
value times its (LRP) gradient. A layer that adds self-loops (GCNConv) gathers by an
index that starts with ``edge_index`` and ends with the loops: the first ``E`` rows are
the input edges, and the loops' relevance stays with their nodes (as PyG's explain masks
do). The same capture serves every model: the interaction network, whose per-feature
split ``[E, 2F]`` (source half, destination half) it keeps, and any PyG model.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

SOURCE, DESTINATION = 0, 1
_GATHERS = frozenset({Tensor.__getitem__, torch.index_select, Tensor.index_select})


@dataclass
class _Gather:
    side: int
    value: Tensor
    """The gathered rows of the input edges (``[E, ...]``), measured from the reference where they are input."""
    relevance: Tensor | None = None


class GatherCapture(TorchFunctionMode):
    """While active, records value x gradient at every gather of a floating tensor by ``edge_index[0]`` or ``[1]``.

    ``inputs`` and ``references`` are the explained tensors and their reference points:
    a gather of an explained input is measured from its reference, like the input itself.
    """

    def __init__(self, edge_index: Tensor, inputs: Sequence[Tensor] = (), references: Sequence[Tensor] = ()) -> None:
        super().__init__()
        self._sides = (edge_index[0], edge_index[1])
        self._edges = edge_index.shape[1]
        self._references = {id(x): x0 for x, x0 in zip(inputs, references)}
        self._inputs = list(inputs)
        self.gathers: list[_Gather] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func not in _GATHERS or not (isinstance(out, Tensor) and out.requires_grad and out.is_floating_point()):
            return out
        side, index = self._gather_side(func, args, kwargs)
        if side is not None:
            value = out.detach()[: self._edges]
            source = args[0]
            if any(source is x for x in self._inputs):
                reference = self._references[id(source)]
                value = value - (reference[index[: self._edges]] if reference.dim() == source.dim() else reference)
            gather = _Gather(side, value)
            self.gathers.append(gather)
            out.register_hook(lambda grad, gather=gather: self._record(gather, grad))
        return out

    def _gather_side(self, func, args, kwargs) -> tuple[int | None, Tensor | None]:
        """Which side of ``edge_index`` a gather reads by (and its index), or ``(None, None)``."""
        if func is Tensor.__getitem__:
            index = args[1]
        else:
            bound = {**dict(zip(("input", "dim", "index"), args)), **kwargs}
            index = bound.get("index")
            if bound.get("dim") not in (0, -bound["input"].dim()):
                return None, None
        for side, reference in enumerate(self._sides):
            if _starts_with(index, reference):
                return side, index
        return None, None

    def _record(self, gather: _Gather, grad: Tensor) -> None:
        relevance = gather.value * grad[: self._edges]
        gather.relevance = relevance if gather.relevance is None else gather.relevance + relevance

    def edge_relevance(self) -> Tensor | None:
        """``[E, 2F]``: source half = sum over source gathers, destination half = sum over destination gathers.

        If gathers differ in width, each is summed over its features instead, giving ``[E, 2]``.
        ``None`` when no gather was seen (for example a graph without edges).
        """
        done = [gather for gather in self.gathers if gather.relevance is not None]
        if not done:
            return None
        widths = {gather.relevance.shape[1:] for gather in done}
        per_edge = (lambda r: r) if len(widths) == 1 else (lambda r: r.flatten(1).sum(1, keepdim=True))
        template = per_edge(done[0].relevance)
        halves = [torch.zeros_like(template), torch.zeros_like(template)]
        for gather in done:
            halves[gather.side] = halves[gather.side] + per_edge(gather.relevance)
        return torch.cat([half.flatten(1) for half in halves], dim=1)


def _starts_with(index: object, reference: Tensor) -> bool:
    """Whether ``index`` is ``reference`` (the same memory, or equal values) or begins with it (appended loops)."""
    if not isinstance(index, Tensor) or index.dim() != 1 or index.dtype != reference.dtype:
        return False
    if index.shape == reference.shape and index.data_ptr() == reference.data_ptr() \
            and index.stride() == reference.stride() and index.device == reference.device:
        return True
    if index.shape[0] < reference.shape[0]:
        return False
    return bool(torch.equal(index[: reference.shape[0]], reference))
