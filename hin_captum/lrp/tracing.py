"""Which explained input a tensor carries: the input itself, or a copy of it made by clone or a cast.

Found from the tensor's autograd history, so it costs nothing on the forward pass:
a block whose input is ``x``, ``x.clone()``, ``x.float()`` or ``x.to(device)`` reads the
explained input ``x`` directly and gets the input rule; anything computed from ``x``
(a gather, a product, a sum) does not.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

VALUE_COPIES = frozenset({"CloneBackward0", "ToCopyBackward0", "AliasBackward0"})
"""Autograd nodes of operations that copy a tensor without changing its values or shape (beyond its dtype)."""


def input_index(tensor: object, inputs: Sequence[Tensor]) -> int | None:
    """The position in ``inputs`` of the explained input that ``tensor`` is, or is a value copy of; else None."""
    if not isinstance(tensor, Tensor):
        return None
    for index, x in enumerate(inputs):
        if tensor is x:
            return index
    node = tensor.grad_fn
    while node is not None and type(node).__name__ in VALUE_COPIES and node.next_functions:
        node = node.next_functions[0][0]
    variable = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf, such as an explained input
    if variable is None or variable.shape != tensor.shape:
        return None
    return next((index for index, x in enumerate(inputs) if variable is x), None)


LAYOUT_CHANGES = VALUE_COPIES | frozenset({
    "PermuteBackward0", "TransposeBackward0", "TransposeBackward1", "ViewBackward0", "ReshapeAliasBackward0",
    "UnsafeViewBackward0", "UnsqueezeBackward0", "SqueezeBackward0", "SqueezeBackward1", "ExpandBackward0",
    "CopySlices", "IndexPutBackward0", "MaskedFillBackward0", "CatBackward0", "SliceBackward0", "IndexBackward0",
})
"""Operations that move values around (a dense batch from a sparse one, channels first, a trimmed sequence)
without combining them."""


def laid_out_from(tensor: object, inputs: Sequence[Tensor], depth: int = 12) -> int | None:
    """The explained input whose values ``tensor`` holds, moved around by :data:`LAYOUT_CHANGES` only (so its
    features are the input's features): how an input BatchNorm is found behind a padding or a permutation."""
    index = input_index(tensor, inputs)
    if index is not None or not isinstance(tensor, Tensor):
        return index
    frontier = [tensor.grad_fn]
    for _ in range(depth):
        following = []
        for node in frontier:
            variable = getattr(node, "variable", None)
            if variable is not None:
                found = next((k for k, x in enumerate(inputs) if variable is x), None)
                if found is not None:
                    return found
            elif node is not None and type(node).__name__ in LAYOUT_CHANGES:
                following += [parent for parent, _ in node.next_functions if parent is not None]
        frontier = following
    return None
