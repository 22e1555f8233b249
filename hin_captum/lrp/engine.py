"""Forward hooks that turn an ordinary backward pass into LRP.

Inside :class:`LRPHooks`, every affine block's output carries a modified
gradient (see :mod:`hin_captum.lrp.rules`). Everything between blocks keeps its
true gradient: ReLU, concatenation, gathers, scatter aggregation and pooling are
linear or piecewise linear and bias-free, so input x gradient across them *is*
LRP-0, and no relevance is lost in message passing. The input relevance of the
whole model is then ``input * grad``, for a whole batch, from one backward pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Mapping

import torch
from torch import Tensor, nn

from .canonization import AffineBlock, propagation_biases
from .rules import Epsilon, Rule, safe_ratio, stabilize


@dataclass
class LayerFlow:
    """Relevance through one call of one affine block, summed over the batch."""

    name: str
    rule: str
    relevance_out: Tensor = field(default_factory=lambda: torch.tensor(0.0))
    relevance_in: Tensor = field(default_factory=lambda: torch.tensor(0.0))

    @property
    def absorbed(self) -> float:
        """Relevance kept by the bias, epsilon or rule of this layer (out minus in)."""
        return float(self.relevance_out - self.relevance_in)


@dataclass
class ConservationReport:
    """Where relevance went: output, input, and what each layer absorbed."""

    output: Tensor
    """Explained logit per graph ``[G]``: the relevance put in at the top."""
    input: Tensor
    """Sum of input relevance per graph ``[G]``."""
    layers: list[LayerFlow]

    @property
    def absorbed(self) -> float:
        return sum(layer.absorbed for layer in self.layers)

    @property
    def residual(self) -> float:
        """Output minus input minus absorbed: zero up to rounding when the bookkeeping closes."""
        return float(self.output.sum() - self.input.sum()) - self.absorbed

    def __str__(self) -> str:
        width = max([len(layer.name) for layer in self.layers] + [5])
        lines = [f"{'layer':<{width}}  {'rule':<8} {'R out':>12} {'R in':>12} {'absorbed':>12}"]
        for layer in self.layers:
            lines.append(
                f"{layer.name:<{width}}  {layer.rule:<8} {float(layer.relevance_out):>12.5g} "
                f"{float(layer.relevance_in):>12.5g} {layer.absorbed:>12.5g}"
            )
        lines.append(
            f"output {float(self.output.sum()):.6g} = input {float(self.input.sum()):.6g}"
            f" + absorbed {self.absorbed:.6g} (residual {self.residual:.2g})"
        )
        return "\n".join(lines)


class LRPHooks:
    """While active, gradients through ``model`` are LRP gradients; input x gradient is LRP relevance.

    Hooks exist only inside the ``with`` block and are removed even on an
    exception. No parameter, buffer or attribute of any module is changed; the
    model runs in eval mode and its mode is restored afterwards.
    """

    def __init__(self, model: nn.Module, rules: Mapping[AffineBlock, Rule], track_conservation: bool = False):
        self.model = model
        self.rules = rules
        self.track_conservation = track_conservation
        self.flows: list[LayerFlow] = []
        self.output: Tensor | None = None
        self._handles: list = []
        self._inputs: dict[AffineBlock, Tensor] = {}
        self._training: list[nn.Module] = []

    def __enter__(self) -> "LRPHooks":
        self._training = [module for module in self.model.modules() if module.training]
        for module in self._training:
            module.training = False
        try:
            for block, rule in self.rules.items():
                if not isinstance(rule, Epsilon) and block.first is not block.last:
                    self._handles.append(block.first.register_forward_pre_hook(partial(self._keep_input, block)))
                self._handles.append(block.last.register_forward_hook(partial(self._apply_rule, block, rule)))
            if self.track_conservation:
                for name, layer in propagation_biases(self.model):
                    self._handles.append(layer.register_forward_hook(partial(self._track_bias, name)))
            self._handles.append(self.model.register_forward_hook(self._keep_output))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._inputs.clear()
        for module in self._training:
            module.training = True
        self._training.clear()

    def reset(self) -> None:
        """Forget the flows and output of earlier forward passes."""
        self.flows.clear()
        self.output = None

    def _keep_input(self, block: AffineBlock, module: nn.Module, args: tuple) -> None:
        self._inputs[block] = args[0]

    def _keep_output(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        self.output = output.detach() if isinstance(output, Tensor) else output

    def _track_bias(self, name: str, module: nn.Module, args: tuple, z: Tensor) -> None:
        """Account for the share of relevance a message-passing layer's own bias keeps (LRP-0 across it)."""
        if z.requires_grad:
            flow = LayerFlow(f"{name}.bias", "bias")
            self.flows.append(flow)
            carried = (z - module.bias).detach()
            z.register_hook(lambda grad: _track(flow, z.detach(), grad, carried, grad))

    def _apply_rule(self, block: AffineBlock, rule: Rule, module: nn.Module, args: tuple, z: Tensor):
        a = self._inputs.pop(block, None) if block.first is not block.last else args[0]
        if not z.requires_grad:
            return None
        flow = LayerFlow(block.name, rule.name) if self.track_conservation else None
        if flow is not None:
            self.flows.append(flow)
        if isinstance(rule, Epsilon):
            bias = block.parameters()[1] if flow is not None else None
            z.register_hook(partial(_epsilon_gradient, rule, z.detach(), bias, flow))
            return None
        modified, modified_bias = rule.modified_forward(block, a)
        ratio = safe_ratio(z.detach(), stabilize(modified.detach(), rule.epsilon))
        out = z.detach() + (modified - modified.detach()) * ratio
        if flow is not None:
            carried = ratio * (modified if modified_bias is None else modified - modified_bias).detach()
            out.register_hook(lambda grad: _track(flow, z.detach(), grad, carried, grad))
        return out


def _epsilon_gradient(rule: Epsilon, z: Tensor, bias: Tensor | None, flow: LayerFlow | None, grad: Tensor) -> Tensor:
    scaled = rule.scale_gradient(z, grad)
    if flow is not None:
        _track(flow, z, grad, z if bias is None else z - bias.detach(), scaled)
    return scaled


def _track(flow: LayerFlow, z: Tensor, grad: Tensor, carried: Tensor, grad_in: Tensor) -> None:
    """Add this backward's relevance at the block output (``z grad``) and at its input (``carried grad_in``)."""
    flow.relevance_out = flow.relevance_out + (z * grad).sum().to(flow.relevance_out)
    flow.relevance_in = flow.relevance_in + (carried * grad_in).sum().to(flow.relevance_in)
