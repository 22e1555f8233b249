"""LRP rules for affine blocks ``z = W a + b``, each a self-contained class.

A rule says how the relevance at a block's output, ``R_z = z * g`` (``g`` the
gradient arriving at ``z``), is shared out among the block's inputs. It does so
in one of two ways, whichever is natural (the other follows):

- :meth:`Rule.gradient`: the *LRP gradient* at the input, such that
  ``a * gradient`` is the input relevance. Relevance then keeps travelling as an
  ordinary gradient through everything between blocks (ReLU, concatenation,
  gathers, sums and means), so ``(x - x0) * gradient`` at the input is LRP.
- :meth:`Rule.relevance`: the input relevance itself, for rules whose relevance
  is not proportional to the input (``flat``, ``w2``, ``zbox``: meant for the
  block that reads the explained input, where the engine takes it as it is).

A rule is a frozen dataclass; its name registers it for text such as
``gamma:0.5`` or ``epsilon:0.01:bias=false`` (:func:`parse_rule`). To add one,
subclass :class:`Rule`, give it a ``name`` and implement one of the two methods:
nothing else in the package needs to change. Formulas follow Zennit's rules
(generalized gamma of Zennit 0.5 and later, Andeol et al. 2021).
"""
from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor

from ..util import InputError
from .affine import Affine, divide, safe_ratio

DEFAULT_EPSILON = 0.1
"""Chosen by the composite study (README, ``scripts/benchmark.py``): with the reference point, epsilon 0.1
meets as many goals as a tiny epsilon and ranks first on deletion and insertion AOPC over the data sets.

The HIN's hidden layers are batch-normalised, so 0.1 is a tenth of a typical
pre-activation. ``epsilon=1e-9`` (HIN-LRP's code and Captum's ``EpsilonRule``) makes the
epsilon rule input x gradient from the reference point. Any value is safe for the epsilon
rule: it only rescales the gradient by ``|z| / (|z| + epsilon)``, in ``[0, 1)``.
"""

RULES: dict[str, type["Rule"]] = {}
"""Every rule class by its ``name``, filled as rule classes are defined (yours too)."""


@dataclass(frozen=True)
class Rule(ABC):
    """One LRP rule for an affine block. Subclasses set ``name`` and implement :meth:`gradient` or :meth:`relevance`."""

    epsilon: float = DEFAULT_EPSILON
    """Stabilizer of every denominator: ``d + epsilon * sgn(d)``."""

    name: ClassVar[str] = ""
    input_only: ClassVar[bool] = False
    """Whether the rule is only for a block that reads the explained input (its relevance is not a gradient
    times the block's input): the engine refuses it anywhere else."""
    arguments: ClassVar[tuple[str, ...]] = ()
    """Fields that text sets by position after the name: ``gamma:0.5`` sets ``gamma``."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in vars(cls):
            return
        if cls.gradient is Rule.gradient and cls.relevance is Rule.relevance:
            raise TypeError(f"rule {cls.__name__} must implement gradient() or relevance()")
        RULES[cls.name] = cls

    def __post_init__(self) -> None:
        if not self.epsilon >= 0:
            raise InputError(f"epsilon must be >= 0, got {self.epsilon}")

    def gradient(self, layer: Affine, grad: Tensor) -> Tensor:
        """The LRP gradient at the block input: ``layer.input * gradient`` is the input relevance.

        Derived from :meth:`relevance` by division: where an input is exactly 0 its
        relevance cannot travel on as a gradient and is absorbed.
        """
        return safe_ratio(self.relevance(layer, grad), layer.input)

    def relevance(self, layer: Affine, grad: Tensor) -> Tensor:
        """The relevance of every input of the block, given the gradient ``grad`` at its output."""
        return layer.input * self.gradient(layer, grad)


@dataclass(frozen=True)
class Epsilon(Rule):
    """epsilon rule: ``R_a = a * W^T (R_z / stab(d))`` with ``d = z``, or ``d = z - b`` when ``bias=False``.

    With the bias in the denominator (default) the bias keeps its share of the
    relevance and the gradient is only rescaled by ``|z| / (|z| + epsilon)``, in
    ``[0, 1)``: LRP-0 for ``epsilon = 0``, input x gradient for a bias-free ReLU
    network. ``bias=False`` passes all of ``R_z`` on (conservation), at the price
    of a denominator that can be near zero where ``z`` is not.
    """

    bias: bool = True
    name = "epsilon"
    arguments = ("epsilon",)

    def gradient(self, layer: Affine, grad: Tensor) -> Tensor:
        if self.bias or layer.bias is None:
            scaled = self.scale_gradient(layer.output, grad)
        else:
            scaled = divide(grad * layer.output, layer.output - layer.bias, self.epsilon)
        return layer.backward(scaled, layer.weight)

    def scale_gradient(self, z: Tensor, grad: Tensor) -> Tensor:
        """``grad * z / stab(z) = grad * |z| / (|z| + epsilon)``, computed in blocks that stay in cache.

        The rescaling is memory-bound; on edge-sized tensors, block by block is
        about 3x faster on a CPU than whole-tensor elementwise operations. On a GPU
        blocks would only multiply kernel launches: there it is one pass. The
        rescaling is elementwise, so a convolution's output, seen with its channels
        moved last, is rescaled in its own (contiguous) layout.
        """
        if self.epsilon == 0:
            return grad
        if z.dim() > 2 and not z.is_contiguous() and z.movedim(-1, 1).is_contiguous() \
                and grad.movedim(-1, 1).is_contiguous():  # a convolution's channels moved last: its own layout
            return self.scale_gradient(z.movedim(-1, 1), grad.movedim(-1, 1)).movedim(1, -1)
        if z.numel() <= _BLOCK or z.device.type != "cpu" or not (z.is_contiguous() and grad.is_contiguous()):
            magnitude = z.abs()
            return grad * magnitude / (magnitude + self.epsilon)
        flat_z, flat_grad = z.reshape(-1), grad.reshape(-1)
        out = torch.empty_like(flat_z)
        magnitude = z.new_empty(_BLOCK)
        denominator = torch.empty_like(magnitude)
        for z_block, grad_block, out_block in zip(flat_z.split(_BLOCK), flat_grad.split(_BLOCK), out.split(_BLOCK)):
            size = len(z_block)
            torch.abs(z_block, out=magnitude[:size])
            torch.add(magnitude[:size], self.epsilon, out=denominator[:size])
            torch.div(magnitude[:size], denominator[:size], out=out_block)
            out_block.mul_(grad_block)
        return out.view(z.shape)


_BLOCK = 4096 * 128
"""Elements per block in :meth:`Epsilon.scale_gradient` (2 MB of float32: fits in L2/L3 cache)."""


def _parts(weight: Tensor) -> tuple[Tensor, Tensor]:
    return weight.clamp(min=0), weight.clamp(max=0)


def _optional(bias: Tensor | None, keep: bool, transform) -> Tensor | None:
    return transform(bias) if keep and bias is not None else None


@dataclass(frozen=True)
class Gamma(Rule):
    """Generalized gamma rule: contributions of the output's own sign are enhanced by ``gamma``.

    For an output ``z > 0`` the contributions ``c = a w`` (and the bias) count as
    ``c + gamma * c+``; for ``z < 0`` as ``c + gamma * c-``. The denominator is then
    ``z + gamma * (sum c+ + b+)`` for ``z > 0`` (at least ``z``) and the mirror image for
    ``z < 0``: it never changes sign, so nothing can blow up (the original gamma rule,
    ``W + gamma W+`` for every output, divides by values near zero).
    """

    gamma: float = 0.25
    bias: bool = True
    name = "gamma"
    arguments = ("gamma",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.gamma >= 0:
            raise InputError(f"gamma must be >= 0, got {self.gamma}")

    def gradient(self, layer: Affine, grad: Tensor) -> Tensor:
        a, z = layer.input, layer.output
        positive, negative = _parts(layer.weight)
        up, down = layer.weight + self.gamma * positive, layer.weight + self.gamma * negative
        bias_up = _optional(layer.bias, self.bias, lambda b: b + self.gamma * b.clamp(min=0))
        bias_down = _optional(layer.bias, self.bias, lambda b: b + self.gamma * b.clamp(max=0))
        a_positive, a_negative = a.clamp(min=0), a.clamp(max=0)
        enhanced_up = layer.forward(a_positive, up, bias_up) + layer.forward(a_negative, down)
        enhanced_down = layer.forward(a_positive, down, bias_down) + layer.forward(a_negative, up)
        relevance = grad * z
        to_up = torch.where(z > 0, divide(relevance, enhanced_up, self.epsilon), 0.0)
        to_down = torch.where(z < 0, divide(relevance, enhanced_down, self.epsilon), 0.0)
        return torch.where(
            a > 0,
            layer.backward(to_up, up) + layer.backward(to_down, down),
            layer.backward(to_up, down) + layer.backward(to_down, up),
        )


@dataclass(frozen=True)
class AlphaBeta(Rule):
    """alpha-beta rule: ``alpha`` times the positive contributions' share minus ``beta`` times the negative ones'.

    ``R_a = alpha * c+ / (sum c+ + b+) R_z - beta * c- / (sum c- + b-) R_z`` with ``c = a w``
    and ``alpha - beta = 1``; ``bias=False`` leaves the bias out of both denominators.
    """

    alpha: float = 2.0
    beta: float = 1.0
    bias: bool = True
    name = "alphabeta"
    arguments = ("alpha", "beta")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0 or self.beta < 0 or abs(self.alpha - self.beta - 1.0) > 1e-12:
            raise InputError(f"alpha-beta needs alpha, beta >= 0 and alpha - beta = 1, got {self.alpha}, {self.beta}")

    def gradient(self, layer: Affine, grad: Tensor) -> Tensor:
        a = layer.input
        positive, negative = _parts(layer.weight)
        a_positive, a_negative = a.clamp(min=0), a.clamp(max=0)
        bias_positive = _optional(layer.bias, self.bias, lambda b: b.clamp(min=0))
        bias_negative = _optional(layer.bias, self.bias, lambda b: b.clamp(max=0))
        total_positive = layer.forward(a_positive, positive, bias_positive) + layer.forward(a_negative, negative)
        total_negative = layer.forward(a_positive, negative, bias_negative) + layer.forward(a_negative, positive)
        relevance = grad * layer.output
        to_positive = divide(self.alpha * relevance, total_positive, self.epsilon)
        to_negative = divide(self.beta * relevance, total_negative, self.epsilon)
        return torch.where(
            a > 0,
            layer.backward(to_positive, positive) - layer.backward(to_negative, negative),
            layer.backward(to_positive, negative) - layer.backward(to_negative, positive),
        )


@dataclass(frozen=True)
class ZPlus(Rule):
    """z+ rule: only positive contributions ``(a w)+`` carry relevance, bias left out (Deep Taylor's z+).

    For non-negative inputs (after a ReLU) this is the classic z+ rule; negative
    inputs contribute through the negative weights, as in alpha1-beta0. Without the
    bias every output passes all of its relevance on.
    """

    name = "zplus"

    def gradient(self, layer: Affine, grad: Tensor) -> Tensor:
        a = layer.input
        positive, negative = _parts(layer.weight)
        total = layer.forward(a.clamp(min=0), positive) + layer.forward(a.clamp(max=0), negative)
        share = divide(grad * layer.output, total, self.epsilon)
        return torch.where(a > 0, layer.backward(share, positive), layer.backward(share, negative))


@dataclass(frozen=True)
class Pass(Rule):
    """Pass rule: the block hands each output's relevance to the input of the same position (same shape only).

    As a gradient: ``R_a = a / stab(a) * R_z``, so an input at exactly 0 (at the
    input block: a feature at its reference value) passes nothing.
    """

    name = "pass"

    def gradient(self, layer: Affine, grad: Tensor) -> Tensor:
        if layer.input.shape[-1] != layer.output.shape[-1]:
            raise InputError(
                f"rule 'pass' needs equal input and output sizes, but a block maps {layer.input.shape[-1]} "
                f"to {layer.output.shape[-1]} features: choose another rule for it"
            )
        return divide(grad * layer.output, layer.input, self.epsilon)


@dataclass(frozen=True)
class Flat(Rule):
    """flat rule: every input of an output gets an equal share of its relevance, whatever its value.

    For the block that reads the explained input. On an elementwise block (a
    BatchNorm on its own) each output has one input, which gets all of it.
    """

    name = "flat"
    input_only = True

    def relevance(self, layer: Affine, grad: Tensor) -> Tensor:
        ones = torch.ones_like(layer.weight)
        share = divide(grad * layer.output, layer.forward(torch.ones_like(layer.input), ones), self.epsilon)
        return layer.backward(share, ones)


@dataclass(frozen=True)
class WSquare(Rule):
    """w^2 rule: inputs share an output's relevance in proportion to ``w^2``, whatever their values.

    For the block that reads the explained input, when its values are unbounded.
    On an elementwise block it passes each output's relevance to its input.
    """

    name = "w2"
    input_only = True

    def relevance(self, layer: Affine, grad: Tensor) -> Tensor:
        square = layer.weight**2
        share = divide(grad * layer.output, layer.forward(torch.ones_like(layer.input), square), self.epsilon)
        return layer.backward(share, square)


@dataclass(frozen=True, eq=False)
class ZBox(Rule):
    """z^B rule for inputs known to lie in ``[low, high]`` (raw input units, per feature).

    ``R_i = sum_j (a_i w_ij - low_i w+_ij - high_i w-_ij) / (sum_i ...) R_j``: relevance
    measured from the corner of the box that lowers each output most. Without bounds
    it takes them from the block's BatchNorm running statistics, ``mean +- width * sd``
    (the block must be a BatchNorm on its own); :meth:`from_data` takes them from jets.
    """

    low: Tensor | None = None
    high: Tensor | None = None
    width: float = 3.0
    name = "zbox"
    input_only = True
    arguments = ("width",)

    def __eq__(self, other: object) -> bool:
        """Equal rules have equal options and bounds of equal values (compared element by element, not as text)."""
        if type(other) is not type(self):
            return NotImplemented
        same = lambda a, b: a is b or (a is not None and b is not None and a.shape == b.shape and torch.equal(
            a.detach().cpu(), b.detach().cpu()))
        return (self.epsilon, self.width) == (other.epsilon, other.width) and same(self.low, other.low) \
            and same(self.high, other.high)

    def __hash__(self) -> int:
        return hash((type(self), self.epsilon, self.width, None if self.low is None else tuple(self.low.shape)))

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.low is None) != (self.high is None):
            raise InputError("zbox needs both bounds, low and high, or neither (then the BatchNorm statistics)")
        if not self.width > 0:
            raise InputError(f"zbox needs a width > 0 standard deviations, got {self.width}")

    @classmethod
    def from_data(cls, x: Tensor, epsilon: float = DEFAULT_EPSILON) -> "ZBox":
        """Bounds from the smallest and largest value of every feature (column) of ``x``."""
        flat = x.detach().reshape(-1, x.shape[-1])
        return cls(epsilon=epsilon, low=flat.min(0).values, high=flat.max(0).values)

    def bounds(self, layer: Affine) -> tuple[Tensor, Tensor]:
        """``(low, high)`` measured like the block's input (from the reference point at the input block)."""
        norm = layer.norm
        if self.low is not None:
            return layer.raw(self.low.to(layer.input)), layer.raw(self.high.to(layer.input))
        if norm is None or norm.running_mean is None:
            raise InputError("rule 'zbox' without bounds needs a BatchNorm with running statistics on its own as "
                             "its block: give low and high (ZBox.from_data(x)) or put it on such a layer")
        spread = self.width * (norm.running_var + norm.eps).sqrt()
        return layer.raw(norm.running_mean - spread), layer.raw(norm.running_mean + spread)

    def relevance(self, layer: Affine, grad: Tensor) -> Tensor:
        low, high = self.bounds(layer)
        a = layer.input
        positive, negative = _parts(layer.weight)
        total = layer.forward(a, layer.weight) - layer.forward(low, positive) - layer.forward(high, negative)
        share = divide(grad * layer.output, total, self.epsilon)
        return (a * layer.backward(share, layer.weight) - low * layer.backward(share, positive)
                - high * layer.backward(share, negative))


def parse_rule(spec: str | Rule, epsilon: float = DEFAULT_EPSILON) -> Rule:
    """A rule from text: ``NAME[:VALUE...][:FIELD=VALUE...]``, e.g. ``epsilon:0.01``, ``gamma:0.5``,
    ``alphabeta:2:1``, ``epsilon:0.1:bias=false``, ``zbox:4``; ``epsilon`` fills in unless the text sets it."""
    if isinstance(spec, Rule):
        return spec
    name, *parts = [part.strip() for part in str(spec).strip().split(":")]
    name = name.lower()
    if name not in RULES:
        raise InputError(f"unknown LRP rule '{spec}': use one of {', '.join(sorted(RULES))}")
    cls = RULES[name]
    settable = {item.name: item.type for item in fields(cls) if item.init and item.name not in ("low", "high")}
    values: dict[str, object] = {"epsilon": epsilon}
    for position, part in enumerate(parts):
        key, separator, text = part.partition("=")
        if not separator:
            if position >= len(cls.arguments):
                takes = f"at most {len(cls.arguments)} value(s) ({', '.join(cls.arguments)})" if cls.arguments else "no value"
                raise InputError(f"rule '{name}' takes {takes}, got '{spec}'")
            key, text = cls.arguments[position], part
        if key not in settable:
            raise InputError(f"rule '{name}' has no option '{key}': options are {', '.join(settable)}")
        values[key] = _parse_value(spec, key, text, settable[key])
    return cls(**values)


def _parse_value(spec: str, key: str, text: str, kind: object) -> object:
    if kind in (bool, "bool"):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise InputError(f"rule '{spec}': {key} must be true or false, got '{text}'")
        return text.lower() in ("true", "1", "yes")
    try:
        return float(text)
    except ValueError:
        raise InputError(f"rule '{spec}' needs a number for {key}, got '{text}'") from None
