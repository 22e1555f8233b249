"""The one call path of LRP: rules applied during one forward and one backward pass.

:class:`LRPEngine` holds a model's affine blocks and their rules. Each call of
:meth:`LRPEngine.propagate` runs the model once with a forward hook on every
block: the hook replaces the block's output by the same values, whose backward
is the block's rule (a :class:`torch.autograd.Function`). Everything between
blocks keeps its true gradient: ReLU, concatenation, gathers, scatter
aggregation and pooling are linear or piecewise linear and bias-free, so the
gradient across them *is* LRP-0 and no relevance is lost in message passing.

The input relevance is measured from a reference point ``x0``
(:mod:`hin_captum.lrp.reference`): the block that reads an explained input sees
``x - x0`` as its input and ``b + W x0`` as its bias, and deposits its input
relevance directly; any other path from the input contributes ``(x - x0) * gradient``.
The Captum class, the attribution registry and PyG's ``LRPExplainer`` all call here.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor, nn

from ..models.modes import eval_mode
from .canonization import AffineBlock, find_affine_blocks, propagation_biases
from .composites import Composite
from .core import Affine
from .guard import OperationGuard, watch_like
from .reference import Reference, resolve_references
from .rules import Rule


@dataclass
class LayerFlow:
    """Relevance through one affine block (or a message-passing layer's own bias), summed over the batch and calls."""

    name: str
    rule: str
    relevance_out: Tensor = field(default_factory=lambda: torch.tensor(0.0, dtype=torch.float64))
    relevance_in: Tensor = field(default_factory=lambda: torch.tensor(0.0, dtype=torch.float64))

    @property
    def absorbed(self) -> float:
        """Relevance kept by the bias, epsilon or rule of this layer (out minus in)."""
        return float(self.relevance_out - self.relevance_in)

    def add(self, relevance_out: Tensor, relevance_in: Tensor) -> None:
        self.relevance_out = self.relevance_out + relevance_out.sum().double().cpu()
        self.relevance_in = self.relevance_in + relevance_in.sum().double().cpu()


@dataclass
class ConservationReport:
    """Where relevance went: output, input, and what each layer absorbed."""

    output: Tensor
    """Explained output per graph ``[G]``: the relevance put in at the top."""
    input: Tensor
    """Sum of input relevance per graph ``[G]``."""
    layers: list[LayerFlow]

    @property
    def absorbed(self) -> float:
        return sum(layer.absorbed for layer in self.layers)

    @property
    def residual(self) -> float:
        """Output minus input minus absorbed: zero up to rounding when the bookkeeping closes."""
        return float(self.output.double().sum() - self.input.double().sum()) - self.absorbed

    def __str__(self) -> str:
        width = max([len(layer.name) for layer in self.layers] + [5])
        lines = [f"{'layer':<{width}}  {'rule':<9} {'R out':>12} {'R in':>12} {'absorbed':>12}"]
        for layer in self.layers:
            lines.append(
                f"{layer.name:<{width}}  {layer.rule:<9} {float(layer.relevance_out):>12.5g} "
                f"{float(layer.relevance_in):>12.5g} {layer.absorbed:>12.5g}"
            )
        lines.append(
            f"output {float(self.output.sum()):.6g} = input {float(self.input.sum()):.6g}"
            f" + absorbed {self.absorbed:.6g} (residual {self.residual:.2g})"
        )
        return "\n".join(lines)


@dataclass
class Propagation:
    """What one LRP pass gives."""

    relevance: tuple[Tensor, ...]
    """Relevance of every element of every explained input, measured from :attr:`references`."""
    output: Tensor
    """The model's output (detached)."""
    references: tuple[Tensor, ...]
    leaf_gradients: tuple[Tensor, ...] = ()
    """LRP gradients at the extra ``leaves`` (for example PyG's edge masks); zero where the output does not reach."""
    flows: list[LayerFlow] = field(default_factory=list)
    """Per-layer relevance flows, when conservation was tracked."""


class LRPEngine:
    """The affine blocks of ``model`` and the rule of each, fixed when the engine is made."""

    def __init__(self, model: nn.Module, composite: Composite) -> None:
        self.model = model
        self.blocks = find_affine_blocks(model)
        self.rules: dict[AffineBlock, Rule] = composite.assign(self.blocks)

    def propagate(
        self,
        inputs: Sequence[Tensor],
        run: Callable[[tuple[Tensor, ...]], Tensor],
        select: Callable[[Tensor], Tensor],
        reference: Reference | Sequence[Reference] = "auto",
        leaves: Sequence[Tensor] = (),
        modes: Sequence[AbstractContextManager] = (),
        track_conservation: bool = False,
    ) -> Propagation:
        """One forward pass ``run(inputs)``, then the LRP backward pass from ``select(output)`` (a scalar).

        ``modes`` are entered around the forward pass (edge capture); ``leaves`` are
        further tensors whose LRP gradient is wanted. The model runs in eval mode,
        with gradients on, and its modes are restored afterwards.
        """
        inputs = tuple(x.detach().requires_grad_() for x in inputs)
        leaves = tuple(leaves)
        with eval_mode(self.model), torch.enable_grad():
            references = resolve_references(reference, self.model, inputs, run)
            session = _Session(self, inputs, references, track_conservation)
            with ExitStack() as stack:
                stack.enter_context(session)
                stack.enter_context(OperationGuard(self.model, inputs))
                for mode in modes:
                    stack.enter_context(mode)
                output = run(inputs)
                score = select(output)
            gradients = torch.autograd.grad(score, inputs + leaves, allow_unused=True)
        relevance = tuple(
            session.deposits[index] + (x.detach() - x0) * _or_zeros(gradients[index], x)
            for index, (x, x0) in enumerate(zip(inputs, references))
        )
        return Propagation(relevance, output.detach(), references, tuple(
            _or_zeros(gradient, leaf) for gradient, leaf in zip(gradients[len(inputs):], leaves)
        ), session.flows)


def _or_zeros(gradient: Tensor | None, like: Tensor) -> Tensor:
    """A gradient that autograd left out (the input does not reach the output) is zero."""
    return torch.zeros_like(like) if gradient is None else gradient.detach()


class _Session:
    """The hooks of one propagation: each block's output gets its rule's backward."""

    def __init__(self, engine: LRPEngine, inputs: tuple[Tensor, ...], references: tuple[Tensor, ...],
                 track_conservation: bool) -> None:
        self.engine = engine
        self.inputs = inputs
        self.references = references
        self.deposits: list[Tensor] = [torch.zeros_like(x, requires_grad=False) for x in inputs]
        self.track_conservation = track_conservation
        self.flows: list[LayerFlow] = []
        self._block_inputs: dict[AffineBlock, Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> "_Session":
        try:
            for block, rule in self.engine.rules.items():
                if block.first is not block.last:
                    self._handles.append(block.first.register_forward_pre_hook(partial(self._keep_input, block)))
                self._handles.append(block.last.register_forward_hook(partial(self._apply_rule, block, rule)))
            if self.track_conservation:
                for name, layer in propagation_biases(self.engine.model):
                    self._handles.append(layer.register_forward_hook(partial(self._track_bias, name)))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._block_inputs.clear()

    def _keep_input(self, block: AffineBlock, module: nn.Module, args: tuple) -> None:
        self._block_inputs[block] = args[0]

    def _input_index(self, tensor: Tensor) -> int | None:
        return next((index for index, x in enumerate(self.inputs) if tensor is x), None)

    def _apply_rule(self, block: AffineBlock, rule: Rule, module: nn.Module, args: tuple, z: Tensor):
        a = self._block_inputs.pop(block, None) if block.first is not block.last else args[0]
        if not (isinstance(z, Tensor) and z.requires_grad and isinstance(a, Tensor)):
            return None
        with torch.no_grad():
            weight, bias = (value.detach() if value is not None else None for value in block.parameters())
        index = self._input_index(a)
        if index is None:
            layer = Affine(a.detach(), weight, bias, z.detach(), norm=block.input_norm)
        else:
            origin = self.references[index]
            shift = Affine.forward(origin, weight)  # W x0: the part of z the reference accounts for
            layer = Affine(a.detach() - origin, weight, shift if bias is None else bias + shift, z.detach(),
                           origin=origin, norm=block.input_norm)
        flow = LayerFlow(block.name, rule.name) if self.track_conservation else None
        if flow is not None:
            self.flows.append(flow)
        out = _RuleBackward.apply(a, z.detach(), _Step(rule, layer, index, flow, self))
        watch_like(out, a)
        return out

    def _track_bias(self, name: str, module: nn.Module, args: tuple, z: Tensor) -> None:
        """Account for the share of relevance a message-passing layer's own bias keeps (LRP-0 across it)."""
        if z.requires_grad:
            flow = LayerFlow(f"{name}.bias", "bias")
            self.flows.append(flow)
            carried = (z - module.bias).detach()
            z.register_hook(lambda grad: flow.add(z.detach() * grad, carried * grad))


@dataclass(eq=False)
class _Step:
    """One call of one block, kept for its backward."""

    rule: Rule
    layer: Affine
    input_index: int | None
    """Which explained input the block reads, if it reads one directly: its relevance is then deposited."""
    flow: LayerFlow | None
    session: _Session


class _RuleBackward(torch.autograd.Function):
    """Identity in the forward pass (the model's own ``z``); the block's rule in the backward pass."""

    @staticmethod
    def forward(ctx, a: Tensor, z: Tensor, step: _Step) -> Tensor:
        ctx.step = step
        return z.detach()  # not a view of the input, so in-place ReLUs after the block still work

    @staticmethod
    def backward(ctx, grad: Tensor):
        step: _Step = ctx.step
        layer = step.layer
        if step.input_index is not None:
            relevance = step.rule.relevance(layer, grad)
            step.session.deposits[step.input_index] += relevance
            gradient = None
        else:
            gradient = step.rule.gradient(layer, grad)
            relevance = layer.input * gradient if step.flow is not None else None
        if step.flow is not None:
            step.flow.add(layer.output * grad, relevance)
        return gradient, None, None
