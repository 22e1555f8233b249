"""The rules of the operations between affine blocks, applied as the forward pass runs, and refusal of the rest.

Between affine blocks the hooks keep the true gradient, which is LRP-0 where the model
is piecewise linear and positively homogeneous in its input: ReLU, max, sums, means,
gathers, concatenation, scaling by a parameter. :class:`OperationRules` watches every
torch function on tensors that depend on the explained inputs (their "taint") and:

- applies the attention rules of :mod:`hin_captum.lrp.attention`: the uniform rule on
  products of two input-dependent tensors, the identity rule on elementwise
  nonlinearities, the softmax (AttnLRP) or constant attention (CP-LRP), LayerNorm and
  RMSNorm, and fused attention (``scaled_dot_product_attention``,
  ``nn.MultiheadAttention``) as its composition; a softmax written out as ``exp`` over its
  sum (PyG's ``softmax``) is recognised as one;
- applies the affine rules to a ``linear`` whose weight is a parameter used outside its
  own module's forward (``F._in_projection_packed`` with ``in_proj.weight``), through the
  engine's ``affine`` callback;
- refuses, by name and innermost module, an operation with no sound rule (``exp``,
  ``log``, a division by an input-dependent tensor, a recurrent layer, a convolution
  whose kernel is not 1), when relevance flows through it: pairwise distances that only
  feed ``topk`` (ParticleNet's kNN) carry none and pass.

Taint is kept in a map of the mode's own (by ``id``, with a weak reference): nothing is
written on the tensors.
"""
from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch_geometric.nn import MessagePassing

from .attention import ATTENTION_RULES, AttentionRules, IdentityRule, NormRule, Refusal
from .canonization import UnsupportedModuleError

IDENTITY = frozenset({
    "gelu", "silu", "sigmoid", "tanh", "elu", "selu", "celu", "softplus", "mish", "hardswish", "hardsigmoid",
    "softsign", "tanhshrink", "logsigmoid", "relu6", "hardtanh",
})
"""Elementwise nonlinearities: the identity rule."""
GATES = frozenset({"sigmoid", "silu", "tanh", "hardsigmoid", "hardswish"})
"""Their outputs gate a product (held constant under CP-LRP)."""
SOFTMAX = frozenset({"softmax", "_softmax"})
PRODUCTS = frozenset({
    "mul", "multiply", "__mul__", "__rmul__", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "einsum", "outer",
    "dot", "bilinear", "inner", "kron", "linear",
})
ADDED_PRODUCTS = frozenset({"addmm", "baddbmm", "addbmm", "addmv", "addcmul"})
"""``input + product``: their first argument is added, the next two are the factors."""
DIVISIONS = frozenset({"div", "divide", "true_divide", "__truediv__", "__floordiv__", "floor_divide"})
REVERSED_DIVISIONS = frozenset({"__rtruediv__", "__rfloordiv__"})
NO_RULE = frozenset({
    "exp", "expm1", "log", "log2", "log10", "log1p", "logsumexp", "log_softmax", "pow", "__pow__", "__rpow__",
    "square", "sqrt", "rsqrt", "reciprocal", "norm", "vector_norm", "normalize", "erf", "erfc", "sin", "cos",
    "atan2", "group_norm", "instance_norm", "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell",
    "softmin", "remainder", "fmod", "atan", "asin", "acos", "sinh", "cosh",
})
"""Operations with no sound rule here: refused when relevance flows through them."""
IN_PLACE_SMOOTH = frozenset({f"{name}_" for name in IDENTITY | NO_RULE} | {"__imul__", "__itruediv__", "mul_", "div_"})
"""In-place forms: refused at once when they change an input-dependent tensor (no rule can be fitted in)."""
MUTATING = frozenset({"__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ior__", "__iand__"})
"""Operations that write into their first argument."""
CONVOLUTIONS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
NORMS = {"layer_norm": True, "rms_norm": False}
"""Normalisations with a rule, and whether they subtract the mean."""
SUMS = frozenset({
    "SumBackward0", "SumBackward1", "ScatterAddBackward0", "ScatterReduceBackward0", "IndexAddBackward0",
    "SegmentReduceBackward0", "IndexSelectBackward0", "RepeatInterleaveBackward0", "AddBackward0", "AddBackward1",
    "ExpandBackward0",
    "IndexBackward0", "GatherBackward0", "ViewBackward0", "UnsqueezeBackward0", "SqueezeBackward1", "CopySlices",
    "ReshapeAliasBackward0", "UnsafeViewBackward0",
})
"""What a softmax's denominator may be made of from its numerator: sums over groups and gathers back."""


class OperationRules(TorchFunctionMode):
    """While active, applies the rules of the operations on input-dependent tensors, and refuses the rest.

    ``inputs`` are the explained tensors. ``affine(a, weight, bias)`` applies the affine
    rule to a functional ``linear`` of a parameter weight; ``is_active(module)`` says
    whether a module's own forward is running (its block's hooks then rule it).
    ``applied`` tells afterwards whether any rule changed a gradient; refusals that a whole backward pass
    then never reaches were not needed either.
    """

    def __init__(self, model: nn.Module, inputs: Sequence[Tensor], attention: str = "attnlrp",
                 affine: Callable[[Tensor, Tensor, Tensor | None], Tensor] | None = None,
                 owner: Callable[[Tensor], nn.Module | None] = lambda weight: None,
                 is_active: Callable[[nn.Module], bool] = lambda module: False, norm_epsilon: float = 0.0) -> None:
        super().__init__()
        if attention not in ATTENTION_RULES:
            raise ValueError(attention)
        self.model = model
        self._inputs = list(inputs)
        self._watched: dict[int, weakref.ref] = {}
        self._gates: dict[int, weakref.ref] = {}
        self._elementwise_gates: dict[int, weakref.ref] = {}
        """Outputs of elementwise gates (sigmoid, tanh, SiLU ...), apart from softmax probabilities."""
        self._exps: dict[int, tuple[weakref.ref, Refusal]] = {}
        self._affine = affine
        self._owner = owner
        self._is_active = is_active
        self._norm_epsilon = norm_epsilon
        """The epsilon of the normalisations' affine part (the configuration's)."""
        self.rules = AttentionRules(attention, self.dependent, self.mark, self.is_gate)
        self.applied = False

    def __enter__(self) -> "OperationRules":
        for tensor in self._inputs:
            self._watch(tensor)
        return super().__enter__()

    def __exit__(self, *exc_info) -> None:
        self._watched.clear()
        self._gates.clear()
        self._elementwise_gates.clear()
        self._exps.clear()
        super().__exit__(*exc_info)

    # --- taint -------------------------------------------------------------------------------------------------

    def _watch(self, tensor: Tensor) -> None:
        self._watched[id(tensor)] = weakref.ref(tensor)

    def dependent(self, tensor: object) -> bool:
        """Whether ``tensor`` depends on an explained input (and carries a gradient)."""
        if not isinstance(tensor, Tensor) or not tensor.requires_grad:
            return False
        reference = self._watched.get(id(tensor))
        return reference is not None and reference() is tensor

    def mark(self, tensor: Tensor, dependent: bool, gate: bool = False) -> None:
        """Record ``tensor`` as input-dependent (and as a gate's output) when ``dependent``."""
        if dependent and isinstance(tensor, Tensor) and tensor.requires_grad:
            self._watch(tensor)
            if gate:
                self._gates[id(tensor)] = weakref.ref(tensor)

    def is_gate(self, tensor: Tensor) -> bool:
        """Whether ``tensor`` itself (not a later tensor at the same address) is a gate's output."""
        reference = self._gates.get(id(tensor))
        return reference is not None and reference() is tensor and self.dependent(tensor)

    def _is_elementwise_gate(self, tensor: object) -> bool:
        """Whether ``tensor`` itself is the output of an elementwise gate (sigmoid, tanh, SiLU ...)."""
        reference = self._elementwise_gates.get(id(tensor)) if isinstance(tensor, Tensor) else None
        return reference is not None and reference() is tensor and self.dependent(tensor)

    def watch_like(self, target: Tensor, source: Tensor) -> None:
        """Watch ``target`` if ``source`` is watched: for tensors made where no torch function is seen (the output
        of a custom autograd function, such as the LRP engine's rule steps)."""
        self.mark(target, self.dependent(source))

    # --- the operations -----------------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tainted = [tensor for tensor in _tensors(chain(args, kwargs.values())) if self.dependent(tensor)]
        if not tainted:
            return func(*args, **kwargs)
        name = getattr(func, "__name__", str(func))
        out = self._ruled(name, func, args, kwargs, tainted)
        for value in _tensors((out,)):
            self.mark(value, True, gate=name in GATES or name in SOFTMAX)
            if name in GATES and isinstance(value, Tensor) and value.requires_grad:
                self._elementwise_gates[id(value)] = weakref.ref(value)
        if (name in MUTATING or name.endswith("_") and not name.startswith("_")) and args and isinstance(args[0], Tensor):
            self.mark(args[0], True)  # an input-dependent value written into a tensor (a dense batch's padding)
        return out

    def _ruled(self, name: str, func, args: tuple, kwargs: dict, tainted: list[Tensor]) -> Any:
        if name in IN_PLACE_SMOOTH:
            self._refuse_now(name, f"'{name}' changes an input-dependent tensor in place")
        if name == "linear":
            return self._linear(func, args, kwargs)
        if name in PRODUCTS or name in ADDED_PRODUCTS:
            return self._product(name, func, args, kwargs)
        if name in IDENTITY:
            self.applied = True
            x, *rest = args
            return IdentityRule.apply(lambda value: func(value, *rest, **kwargs), x)
        if name in SOFTMAX:
            self.applied = True
            out = func(*args, **kwargs)
            return out.detach() if self.rules.attention == "cp" else out
        if name in NORMS:
            return self._norm(name, args, kwargs)
        if name == "scaled_dot_product_attention":
            self.applied = True
            return self.rules.scaled_dot_product_attention(*args, **kwargs)
        if name == "multi_head_attention_forward":
            self.applied = True
            return self.rules.multi_head_attention(self._ruled_affine, *args, **kwargs)
        if name in CONVOLUTIONS:
            return self._convolution(name, func, args, kwargs)
        if name in DIVISIONS or name in REVERSED_DIVISIONS:
            return self._division(name, func, args, kwargs)
        if name == "exp":
            return self._exp(func, args, kwargs)
        if name in NO_RULE:
            return self._refuse_later(func(*args, **kwargs), f"'{name}' has no LRP rule")
        return func(*args, **kwargs)

    def _linear(self, func, args: tuple, kwargs: dict) -> Tensor:
        bound = _bind(("input", "weight", "bias"), args, kwargs)
        x, weight, bias = bound["input"], bound["weight"], bound.get("bias")
        if self.dependent(weight):
            return self._product("linear", func, args, kwargs)
        owner = self._owner(weight)
        if owner is not None and self._is_active(owner):
            return func(*args, **kwargs)  # inside its module's forward: the block's hooks apply its rule
        return self._ruled_affine(x, weight, bias)

    def _ruled_affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """A functional ``linear`` with the affine rule (or plain, for an input that carries no relevance)."""
        if not self.dependent(x) or self._affine is None:
            out = torch.nn.functional.linear(x, weight, bias)
        else:
            self.applied = True
            out = self._affine(x, weight, bias)
        self.mark(out, self.dependent(x))
        return out

    def _product(self, name: str, func, args: tuple, kwargs: dict) -> Any:
        """A product of input-dependent factors (two or more): each factor's gradient divided by their number."""
        positions = _factor_positions(name, args)
        factors = [args[i] for i in positions]
        if name == "einsum":
            factors = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
        if sum(self.dependent(t) for t in factors) < 2 and not (self.rules.attention == "cp" and any(
                self.is_gate(t) for t in factors)):
            return func(*args, **kwargs)
        self.applied = True
        held = [index for index, t in enumerate(factors) if self._is_elementwise_gate(t)]
        if held and not isinstance(self._running_module(), MessagePassing):
            held = []  # a gate outside a message keeps AttnLRP's uniform rule (LXT's)
        ruled = self.rules.factors(factors, held)
        if name == "einsum":
            return func(args[0], *ruled)
        new_args = list(args)
        for position, factor in zip(positions, ruled):
            new_args[position] = factor
        return func(*new_args, **kwargs)

    def _norm(self, name: str, args: tuple, kwargs: dict) -> Tensor:
        self.applied = True
        parameters = ("input", "normalized_shape", "weight", "bias", "eps") if name == "layer_norm" \
            else ("input", "normalized_shape", "weight", "eps")
        bound = _bind(parameters, args, kwargs)
        eps = bound.get("eps")
        eps = (1e-5 if name == "layer_norm" else torch.finfo(bound["input"].dtype).eps) if eps is None else eps
        return NormRule.apply(bound["input"], len(bound["normalized_shape"]), bound.get("weight"), bound.get("bias"),
                              float(eps), NORMS[name], self._norm_epsilon)

    def _convolution(self, name: str, func, args: tuple, kwargs: dict) -> Tensor:
        bound = _bind(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), args, kwargs)
        owner = self._owner(bound["weight"])
        if owner is not None and self._is_active(owner):
            return func(*args, **kwargs)
        return self._refuse_later(func(*args, **kwargs), f"'{name}' outside a 1x1 convolution module has no LRP rule")

    def _division(self, name: str, func, args: tuple, kwargs: dict) -> Tensor:
        numerator, divisor = (args[1], args[0]) if name in REVERSED_DIVISIONS else (args[0], args[1] if len(
            args) > 1 else kwargs.get("other"))
        out = func(*args, **kwargs)
        if not self.dependent(divisor):
            return out
        exp = self._exps.get(id(numerator))
        if exp is not None and exp[0]() is numerator and _reaches(divisor, numerator):
            self.applied = True  # exp(x) over a sum of the same exps: a softmax (PyG's, for one)
            exp[1].allowed = True
            if self.rules.attention == "cp":
                return out.detach()
            self.mark(out, True, gate=True)
            return out
        return self._refuse_later(out, f"'{name}' divides by an input-dependent tensor (a normalisation)")

    def _exp(self, func, args: tuple, kwargs: dict) -> Tensor:
        refusal = Refusal(self._message("'exp' has no LRP rule (outside a softmax)"))
        out = refusal.apply(func(*args, **kwargs))
        self._exps[id(out)] = (weakref.ref(out), refusal)
        return out

    def _refuse_later(self, out: Any, problem: str) -> Any:
        """``out`` with a refusal that raises if relevance flows back through it (ParticleNet's kNN distances
        only feed ``topk``: nothing flows, nothing is refused). A refusal is no rule: it does not make
        :attr:`applied`."""
        refusal = Refusal(self._message(problem))
        if isinstance(out, Tensor):
            return refusal.apply(out) if out.requires_grad and out.is_floating_point() else out
        if isinstance(out, tuple):
            return type(out)(refusal.apply(t) if isinstance(t, Tensor) and t.requires_grad and t.is_floating_point()
                             else t for t in out)
        return out

    def _refuse_now(self, name: str, problem: str) -> None:
        raise UnsupportedModuleError(self._message(problem)())

    def _message(self, problem: str) -> Callable[[], str]:
        """The refusal's message, made when it is raised: the innermost running module is found now (cheaply), its
        name only then."""
        module = self._running_module()

        def message() -> str:
            names = {id(m): name for name, m in self.model.named_modules()}
            where = "the forward function" if module is None or id(module) not in names else \
                f"{names[id(module)] or 'the model'} ({type(module).__name__})"
            return (f"LRP cannot pass {where}: {problem}, and no LRP rule here covers it; give LRP a model whose "
                    "operations have rules (Linear, 1x1 convolutions, BatchNorm, ReLU, attention, LayerNorm, "
                    "GELU/SiLU, sum/mean/max aggregation), or use another method such as 'ig'")

        return message

    @staticmethod
    def _running_module() -> nn.Module | None:
        """The innermost module whose ``forward`` (or ``message``) is on the call stack."""
        frame = inspect.currentframe()
        while frame is not None:
            if frame.f_code.co_name in ("forward", "message", "propagate", "edge_update"):
                module = frame.f_locals.get("self")
                if isinstance(module, nn.Module):
                    return module
            frame = frame.f_back
        return None


def _factor_positions(name: str, args: tuple) -> list[int]:
    """Where the factors of a product sit among its positional arguments."""
    if name in ADDED_PRODUCTS:
        return [1, 2]
    if name == "linear":
        return [0, 1]
    if name == "einsum":
        return []
    return [0, 1]


def _bind(names: Sequence[str], args: tuple, kwargs: dict) -> dict[str, Any]:
    return {**dict(zip(names, args)), **kwargs}


def _reaches(divisor: Tensor, numerator: Tensor, depth: int = 10) -> bool:
    """Whether ``divisor`` is made from ``numerator`` by sums over groups and gathers only (a softmax's denominator)."""
    target = numerator.grad_fn
    frontier = [divisor.grad_fn]
    for _ in range(depth):
        next_frontier = []
        for node in frontier:
            if node is None:
                continue
            if node is target:
                return True
            if type(node).__name__ in SUMS:
                next_frontier += [parent for parent, _ in node.next_functions if parent is not None]
        frontier = next_frontier
    return False


def _tensors(values: Iterable[object]) -> Iterator[Tensor]:
    """The tensors among ``values`` and inside lists and tuples among them (``torch.cat``'s input, ``max``'s output).

    One level deep, which covers torch's signatures, and much cheaper than a pytree walk on every operation.
    """
    for value in values:
        if isinstance(value, Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (item for item in value if isinstance(item, Tensor))
