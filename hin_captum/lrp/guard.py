"""Refuse operations that no LRP rule here covers, instead of explaining through them wrongly.

Between affine blocks the hooks keep the true gradient, which is LRP-0 only where
the model is piecewise linear and positively homogeneous in its input: ReLU,
max, sums, means, gathers, concatenation. :class:`OperationGuard` watches every
torch function on tensors that depend on the explained input (their "taint")
during the forward pass, and stops at the first one that is not of that kind:
a smooth nonlinearity such as sigmoid, tanh or a softmax (GATConv's attention,
a final ``log_softmax``), a product of two input-dependent tensors (gating,
attention weights) or a division by one (normalisation). The error names the
operation and the innermost module that ran it.
"""
from __future__ import annotations

import inspect
import weakref
from collections.abc import Sequence
from itertools import chain
from typing import Iterable, Iterator

from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .canonization import UnsupportedModuleError

SMOOTH_FUNCTIONS = frozenset({
    "sigmoid", "sigmoid_", "logsigmoid", "tanh", "tanh_", "softmax", "_softmax", "log_softmax", "softmin",
    "exp", "exp_", "expm1", "log", "log_", "log1p", "logsumexp", "pow", "pow_", "__pow__", "__rpow__", "square",
    "sqrt", "rsqrt", "reciprocal", "norm", "vector_norm", "normalize", "gelu", "silu", "elu", "selu", "celu",
    "softplus", "mish", "hardswish", "hardsigmoid", "hardtanh", "relu6", "softsign", "tanhshrink", "erf",
    "sin", "cos", "layer_norm", "group_norm", "instance_norm",
})
"""Functions that are not piecewise linear and homogeneous, by name (``torch.f``, ``Tensor.f`` and ``F.f`` alike)."""
PRODUCTS = frozenset({
    "mul", "mul_", "multiply", "__mul__", "__rmul__", "__imul__", "matmul", "__matmul__", "__rmatmul__", "mm",
    "bmm", "einsum", "bilinear", "outer", "dot", "baddbmm", "addmm", "addcmul",
})
DIVISIONS = frozenset({"div", "div_", "divide", "true_divide", "__truediv__", "__itruediv__", "__floordiv__"})
REVERSED_DIVISIONS = frozenset({"__rtruediv__", "__rfloordiv__"})


class OperationGuard(TorchFunctionMode):
    """While active, raise :class:`UnsupportedModuleError` at an operation LRP cannot pass through.

    ``inputs`` are the explained tensors; whatever is computed from them with
    gradients is watched. Parameters and other inputs (edge masks, weights)
    are not, so ``W x``, ``(1 + eps) x`` or ``mask * message`` pass.
    """

    def __init__(self, model: nn.Module, inputs: Sequence[Tensor]) -> None:
        super().__init__()
        self.model = model
        self._inputs = list(inputs)
        self._watched: dict[int, weakref.ref] = {}
        """The input-dependent tensors, by ``id`` with a weak reference that tells a live tensor from a reused id:
        nothing is written on the tensors themselves."""

    def __enter__(self) -> "OperationGuard":
        for tensor in self._inputs:
            self._watch(tensor)
        return super().__enter__()

    def __exit__(self, *exc_info) -> None:
        self._watched.clear()
        super().__exit__(*exc_info)

    def _watch(self, tensor: Tensor) -> None:
        self._watched[id(tensor)] = weakref.ref(tensor)

    def _watched_tensor(self, tensor: Tensor) -> bool:
        if not tensor.requires_grad:
            return False
        reference = self._watched.get(id(tensor))
        return reference is not None and reference() is tensor

    def watch_like(self, target: Tensor, source: Tensor) -> None:
        """Watch ``target`` if ``source`` is watched: for tensors made where no torch function is seen (the output
        of a custom autograd function, such as the LRP engine's rule steps)."""
        if target.requires_grad and self._watched_tensor(source):
            self._watch(target)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tainted = [tensor for tensor in _tensors(chain(args, kwargs.values())) if self._watched_tensor(tensor)]
        if tainted:
            self._check(getattr(func, "__name__", str(func)), args, tainted)
        out = func(*args, **kwargs)
        if tainted:
            for value in _tensors((out,)):
                if value.requires_grad:
                    self._watch(value)
        return out

    def _check(self, name: str, args: tuple, tainted: list[Tensor]) -> None:
        if name in SMOOTH_FUNCTIONS:
            problem = f"'{name}' is not piecewise linear"
        elif name in PRODUCTS and len(tainted) > 1:
            problem = f"'{name}' multiplies two input-dependent tensors (gating or attention)"
        elif name in DIVISIONS | REVERSED_DIVISIONS and self._divisor_is_tainted(name, args):
            problem = f"'{name}' divides by an input-dependent tensor (a normalisation)"
        else:
            return
        where = self._running_module()
        raise UnsupportedModuleError(
            f"LRP cannot pass {where}: {problem}, and no LRP rule here covers it; give LRP a model of "
            "Linear/BatchNorm1d, ReLU, sum/mean/max aggregation and pooling that returns logits, "
            "or use another method such as 'ig'"
        )

    def _running_module(self) -> str:
        """The innermost module of the model whose ``forward`` is on the call stack (only looked up to report)."""
        names = {id(module): name for name, module in self.model.named_modules()}
        frame = inspect.currentframe()
        while frame is not None:
            module = frame.f_locals.get("self")
            if frame.f_code.co_name == "forward" and id(module) in names:
                return f"{names[id(module)] or 'the model'} ({type(module).__name__})"
            frame = frame.f_back
        return "the forward function"

    def _divisor_is_tainted(self, name: str, args: tuple) -> bool:
        divisor = args[0] if name in REVERSED_DIVISIONS else (args[1] if len(args) > 1 else None)
        return isinstance(divisor, Tensor) and self._watched_tensor(divisor)


def _tensors(values: Iterable[object]) -> Iterator[Tensor]:
    """The tensors among ``values`` and inside lists and tuples among them (``torch.cat``'s input, ``max``'s output).

    One level deep, which covers torch's signatures, and much cheaper than a pytree walk on every operation.
    """
    for value in values:
        if isinstance(value, Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (item for item in value if isinstance(item, Tensor))
