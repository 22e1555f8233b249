"""Find the affine blocks of a model: Linear, 1x1 convolutions, BatchNorm, and either followed by a BatchNorm.

A ``Linear`` (or a ``Conv1d``/``Conv2d`` with kernel size 1, which is a Linear over the
channels at every position) directly followed by a ``BatchNorm1d``/``BatchNorm2d`` in an
``nn.Sequential`` is one affine map in eval mode (canonization, as Zennit's
``SequentialMergeBatchNorm``), so its rule acts at the BatchNorm output with the folded
weights. Nothing is written into the model: folded parameters are computed on the fly.

PyG convolutions hold their weights in Linear children, which are blocks like any
other. Their propagation is linear in the features, so the gradient crosses it as
LRP-0; a ``bias`` they add after aggregating (GCNConv) keeps its share of the
relevance, as a bias does, and GIN's ``eps`` only scales the root features.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear as PyGLinear

from ..util import InputError

CONVOLUTION_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d)
LINEAR_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, PyGLinear, *CONVOLUTION_TYPES)
NORM_TYPES: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d)

UNSUPPORTED_TYPES: tuple[type[nn.Module], ...] = (
    nn.LogSoftmax, nn.Softmin, nn.RNNBase, nn.RNNCellBase, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.ConvTranspose3d, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.LocalResponseNorm,
)
"""Modules with no sound LRP rule here: refused by name rather than explained wrongly (a final log-softmax: return
logits)."""


class UnsupportedModuleError(InputError):
    """The model holds a module that no LRP rule here covers."""


@dataclass(frozen=True, eq=False)
class AffineBlock:
    """One affine map ``z = W a + b`` made of a Linear, a BatchNorm1d, or both in sequence."""

    linear: nn.Module | None
    norm: nn.BatchNorm1d | None
    names: tuple[str, ...]
    """Qualified names of the member modules, as in ``model.named_modules()``."""
    _folded: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.names[0] or "<model>"

    @property
    def first(self) -> nn.Module:
        """The module that receives the block's input."""
        return self.linear if self.linear is not None else self.norm

    @property
    def last(self) -> nn.Module:
        """The module whose output is the block's output ``z``."""
        return self.norm if self.norm is not None else self.linear

    def channel_first(self, a: Tensor) -> bool:
        """Whether the block's features are dimension 1 of its input ``a`` (convolutions, and BatchNorm on inputs of
        more than two dimensions) rather than the last."""
        return isinstance(self.linear, CONVOLUTION_TYPES) or (self.linear is None and a.dim() > 2)

    @property
    def input_norm(self) -> nn.BatchNorm1d | None:
        """The BatchNorm that normalises the block's input, for a BatchNorm on its own (its statistics describe the input)."""
        return self.norm if self.linear is None else None

    @property
    def out_features(self) -> int:
        return self.norm.num_features if self.norm is not None else self.linear.weight.shape[0]

    def folded(self, dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
        """:meth:`parameters`, detached and in ``dtype``, computed again only when a parameter or statistic changed
        (its version counter moved) since the last call."""
        tensors = [t for module in (self.linear, self.norm) if module is not None
                   for t in (*module.parameters(recurse=False), *module.buffers(recurse=False))]
        key = (dtype, *((t.data_ptr(), t._version) for t in tensors))
        if self._folded.get("key") != key:
            with torch.no_grad():
                weight, bias = self.parameters()
                self._folded.update(key=key, value=(weight.detach().to(dtype),
                                                    None if bias is None else bias.detach().to(dtype)))
        return self._folded["value"]

    def parameters(self) -> tuple[Tensor, Tensor | None]:
        """Folded ``(W, b)``; ``W`` is a vector (elementwise scale) for a BatchNorm on its own."""
        weight = bias = None
        if self.linear is not None:
            weight, bias = self.linear.weight.flatten(1), self.linear.bias  # a 1x1 convolution's [O, I, 1] -> [O, I]
        if self.norm is not None:
            scale, shift = _norm_scale_shift(self.norm)
            if weight is None:
                return scale, shift
            weight = scale[:, None] * weight
            bias = shift if bias is None else scale * bias + shift
        return weight, bias


def _norm_scale_shift(norm: nn.Module) -> tuple[Tensor, Tensor]:
    if norm.running_mean is None or norm.running_var is None:
        raise UnsupportedModuleError(
            f"{norm} keeps no running statistics, so it is not an affine map in eval mode: "
            "build it with track_running_stats=True"
        )
    scale = (norm.running_var + norm.eps).rsqrt()
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift


def find_affine_blocks(model: nn.Module) -> list[AffineBlock]:
    """Every affine block of ``model`` in registration order; refuse modules with no rule."""
    names = {module: name for name, module in model.named_modules()}
    merged: dict[nn.Module, nn.Module] = {}  # BatchNorm -> the Linear right before it
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            children = list(module.children())
            for before, after in zip(children, children[1:]):
                if isinstance(before, LINEAR_TYPES) and isinstance(after, NORM_TYPES):
                    merged[after] = before
    merged_linears = set(merged.values())

    blocks = []
    for module in model.modules():
        _check_supported(module, names[module])
        if isinstance(module, LINEAR_TYPES) and module not in merged_linears:
            blocks.append(_block(names, module, None))
        elif isinstance(module, NORM_TYPES):
            blocks.append(_block(names, merged.get(module), module))
    return blocks


def _block(names: dict[nn.Module, str], linear: nn.Module | None, norm: nn.Module | None) -> AffineBlock:
    members = tuple(names[m] for m in (linear, norm) if m is not None)
    return AffineBlock(linear=linear, norm=norm, names=members)


def _check_supported(module: nn.Module, name: str) -> None:
    label = name or "the model itself"
    if isinstance(module, UNSUPPORTED_TYPES):
        raise UnsupportedModuleError(
            f"{label} ({type(module).__name__}) has no LRP rule here; "
            "return logits (no final log-softmax), or explain the model with another method such as 'ig'"
        )
    if isinstance(module, CONVOLUTION_TYPES):
        kernel = tuple(module.kernel_size)
        if any(k != 1 for k in kernel) or any(s != 1 for s in module.stride) or module.groups != 1 or \
                isinstance(module.padding, str) and module.padding != "valid" or \
                not isinstance(module.padding, str) and any(p != 0 for p in module.padding):
            raise UnsupportedModuleError(
                f"{label} ({type(module).__name__}, kernel {kernel}) has no LRP rule here: only convolutions with "
                "kernel size 1, stride 1, no padding and one group are affine blocks; use another method such as 'ig'"
            )


def propagation_biases(model: nn.Module) -> list[tuple[str, MessagePassing]]:
    """The message-passing layers of ``model`` that add a ``bias`` of their own after aggregating."""
    return [
        (name, module) for name, module in model.named_modules()
        if isinstance(module, MessagePassing) and isinstance(getattr(module, "bias", None), nn.Parameter)
    ]
