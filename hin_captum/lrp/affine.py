"""What a rule sees of one call of one affine block, and the numerical helpers rules share.

An affine block computes ``z = W a + b``: a ``Linear``, a ``BatchNorm1d`` (``W`` a
vector, applied elementwise) or the two folded into one. A rule receives an
:class:`Affine` and the gradient ``g`` arriving at ``z``; the relevance there is
``R_z = z * g``. At the block that reads the explained input, ``a`` is the input's
departure from its reference point, ``x - x0``, and the bias absorbs the rest:
``b' = b + W x0``, so ``z = W (x - x0) + b'`` is still the model's own output.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def stabilize(value: Tensor, epsilon: float) -> Tensor:
    """``value + epsilon * sgn(value)`` with ``sgn(0) = +1``: never zero when ``epsilon > 0``."""
    return value + torch.where(value >= 0, epsilon, -epsilon)


def safe_ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator`` with 0 where the denominator is 0 (relevance that cannot flow is absorbed)."""
    zero = denominator == 0
    return torch.where(zero, torch.zeros_like(numerator), numerator / torch.where(zero, 1.0, denominator))


def divide(numerator: Tensor, denominator: Tensor, epsilon: float) -> Tensor:
    """``numerator / stab(denominator)``, and 0 where even the stabilized denominator is 0 (``epsilon = 0``)."""
    return safe_ratio(numerator, stabilize(denominator, epsilon))


@dataclass(frozen=True)
class Affine:
    """One call of an affine block ``z = W a + b``, as its rule sees it."""

    input: Tensor
    """``a [..., I]``: the block's input; at the input block, the departure ``x - x0`` from the reference."""
    weight: Tensor
    """``W [J, I]``, or ``[J]`` for an elementwise block (a BatchNorm on its own)."""
    bias: Tensor | None
    """``b [J]``; at the input block it includes ``W x0``."""
    output: Tensor
    """``z [..., J]``: the model's own output of the block."""
    origin: Tensor | None = None
    """``x0``, the reference point, at the input block (``input + origin`` is the raw input); ``None`` elsewhere."""
    norm: nn.BatchNorm1d | None = None
    """The block's BatchNorm when it normalises the block's input on its own: its running statistics
    describe the input (``zbox`` takes its bounds from them)."""

    @property
    def elementwise(self) -> bool:
        return self.weight.dim() == 1

    @staticmethod
    def forward(a: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """``weight a + bias`` with this block's kind of map (matrix product or elementwise scale)."""
        if weight.dim() == 2:
            return F.linear(a, weight, bias)
        out = a * weight
        return out if bias is None else out + bias

    @staticmethod
    def backward(grad: Tensor, weight: Tensor) -> Tensor:
        """``weight^T grad``: the gradient at the input of :meth:`forward` for ``grad`` at its output.

        A convolution's gradient arrives with its channels moved last (a strided view of a channels-first
        tensor): the product is then taken in the tensor's own layout, with no copy.
        """
        if weight.dim() != 2:
            return grad * weight
        if grad.dim() > 2 and not grad.is_contiguous() and grad.movedim(-1, 1).is_contiguous():
            return torch.einsum("nc...,ci->ni...", grad.movedim(-1, 1), weight).movedim(1, -1)
        return grad @ weight

    def raw(self, value: Tensor) -> Tensor:
        """A bound given in the raw input's units, moved to where :attr:`input` is measured from."""
        return value if self.origin is None else value - self.origin
