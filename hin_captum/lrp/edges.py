"""Edge relevance from the gathers by ``edge_index`` (:class:`GatherCapture`) or the messages (:class:`MessageRelevance`).

Message passing reads node features per edge with ``x[edge_index[0]]``,
``x[edge_index[1]]`` or ``index_select``. Those gathers are parameter-free and
redistribute relevance exactly, so the relevance that flows through edge ``e``
is the gathered value times its (LRP-modified) gradient. A torch function mode
sees every gather during the forward pass and puts a gradient hook on its output.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import MessagePassing

from ..errors import InputError

SOURCE, DESTINATION = 0, 1


def _same_index(index: object, reference: Tensor) -> bool:
    """Whether ``index`` is ``reference`` itself, a view of the same memory, or an equal copy."""
    if not isinstance(index, Tensor) or index.shape != reference.shape or index.dtype != reference.dtype:
        return False
    if (
        index.data_ptr() == reference.data_ptr()
        and index.stride() == reference.stride()
        and index.device == reference.device
    ):
        return True
    return bool(torch.equal(index, reference))


@dataclass
class _Gather:
    side: int
    value: Tensor
    relevance: Tensor | None = None


class GatherCapture(TorchFunctionMode):
    """Records value x gradient at every gather of a floating tensor by ``edge_index[0]`` or ``[1]``."""

    def __init__(self, edge_index: Tensor) -> None:
        super().__init__()
        self._sides = (edge_index[0], edge_index[1])
        self.gathers: list[_Gather] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not (isinstance(out, Tensor) and out.requires_grad and out.is_floating_point()):
            return out
        side = self._gather_side(func, args, kwargs)
        if side is not None:
            gather = _Gather(side, out.detach())
            self.gathers.append(gather)
            out.register_hook(lambda grad, gather=gather: self._record(gather, grad))
        return out

    def _gather_side(self, func, args, kwargs) -> int | None:
        if func is Tensor.__getitem__:
            index = args[1]
        elif func in (torch.index_select, Tensor.index_select):
            bound = {**dict(zip(("input", "dim", "index"), args)), **kwargs}
            index = bound.get("index")
            if bound.get("dim") not in (0, -bound["input"].dim()):
                return None
        else:
            return None
        for side, reference in enumerate(self._sides):
            if _same_index(index, reference):
                return side
        return None

    @staticmethod
    def _record(gather: _Gather, grad: Tensor) -> None:
        relevance = gather.value * grad
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


class MessageRelevance:
    """Relevance through every message of every ``MessagePassing`` layer, per edge of ``edge_index``.

    PyG's explain hook multiplies each message by an edge mask (a fresh tensor of
    ones here, so the forward value is unchanged); the gradient at the mask is then
    the message times its (LRP-modified) gradient, summed over features and layers.
    For messages made by gathering (``x_j``, or ``norm * x_j`` as in GCNConv) it
    equals the relevance at the gather. Self-loops that a layer adds itself get no
    mask entry, as in PyG: their relevance stays with the node.
    """

    def __init__(self, model: nn.Module, edge_index: Tensor, dtype: torch.dtype = torch.float32) -> None:
        self.model = model
        self.edge_index = edge_index
        self.mask = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device, requires_grad=True)

    def __enter__(self) -> "MessageRelevance":
        if not any(isinstance(module, MessagePassing) for module in self.model.modules()):
            raise InputError(f"{type(self.model).__name__} has no MessagePassing layer, so no edge relevance: "
                             "explain it with edge_mask_type=None")
        set_masks(self.model, self.mask, self.edge_index, apply_sigmoid=False)
        return self

    def __exit__(self, *exc_info) -> None:
        clear_masks(self.model)
