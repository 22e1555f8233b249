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
Edge relevance comes from the gathers by ``edge_index`` (:mod:`hin_captum.lrp.edges`).
The Captum class, the attribution registry and PyG's ``LRPExplainer`` all call here,
through a :class:`~hin_captum.lrp.config.Propagator`, which makes one engine per model
and keeps it while the model's modules stay the same. Which blocks read an explained
input is seen on every pass (:mod:`hin_captum.lrp.tracing`); the operation guard runs on
an engine's first pass.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor, nn

from ..util import InputError
from ..models.modes import eval_mode
from .canonization import AffineBlock, find_affine_blocks, propagation_biases
from .composites import Composite
from .affine import Affine
from .edges import GatherCapture
from .guard import OperationGuard
from .reference import InputNorms, Reference, resolve_references
from .rules import Rule
from .tracing import input_index


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
    edge: Tensor | None = None
    """Relevance through each edge of the given ``edge_index`` (``[E, 2F]`` or ``[E, 2]``), None without one."""
    flows: list[LayerFlow] = field(default_factory=list)
    """Per-layer relevance flows, when conservation was tracked."""


class LRPEngine:
    """The affine blocks of ``model`` and their rules under ``composite``, found when the engine is made.

    A block gets the composite's input rule on a pass where it reads an explained
    input; :meth:`rule_of` says which rule a block gets either way.
    """

    def __init__(self, model: nn.Module, composite: Composite) -> None:
        self.model = model
        self.composite = composite
        self.blocks = find_affine_blocks(model)
        self.rules: dict[AffineBlock, Rule] = composite.assign(self.blocks)
        """The rule of every block on a pass where it reads no explained input."""
        self.input_rules: dict[AffineBlock, Rule] = composite.assign(self.blocks, reading=self.blocks)
        """The rule of every block on a pass where it reads an explained input."""
        self.input_norms = InputNorms()
        self.checked = False
        """Whether a forward pass of this engine went through the operation guard (later ones need not)."""

    def rule_of(self, block: AffineBlock, reads_input: bool) -> Rule:
        """The rule of ``block``; an input-only rule (flat, w^2, z^B) on a block that reads no input is refused."""
        rule = (self.input_rules if reads_input else self.rules)[block]
        if rule.input_only and not reads_input:
            raise InputError(f"rule '{rule.name}' is for a block that reads the explained input, but {block.name} "
                             "does not: give it to a block that does (or use the composite's input rule)")
        return rule

    def propagate(
        self,
        inputs: Sequence[Tensor],
        run: Callable[[tuple[Tensor, ...]], Tensor],
        select: Callable[[Tensor], Tensor],
        reference: Reference | Sequence[Reference] = "auto",
        edge_index: Tensor | None = None,
        track_conservation: bool = False,
    ) -> Propagation:
        """One forward pass ``run(inputs)``, then the LRP backward pass from ``select(output)`` (a scalar).

        With ``edge_index``, the relevance through its edges is read at the gathers.
        The model runs in eval mode, with gradients on, and its modes are restored afterwards.
        """
        inputs = tuple(x.detach().requires_grad_() for x in inputs)
        with eval_mode(self.model), torch.enable_grad():
            references = resolve_references(reference, self.model, inputs, run, self.input_norms)
            with ExitStack() as stack:
                guard = None if self.checked else stack.enter_context(OperationGuard(self.model, inputs))
                session = stack.enter_context(_Session(self, inputs, references, track_conservation, guard))
                capture = None if edge_index is None else stack.enter_context(
                    GatherCapture(edge_index, inputs, references))
                output = run(inputs)
                score = select(output)
            self.checked = True
            gradients = torch.autograd.grad(score, inputs, allow_unused=True)
        relevance = tuple(
            session.deposits[index] + (x.detach() - x0) * _or_zeros(gradients[index], x)
            for index, (x, x0) in enumerate(zip(inputs, references))
        )
        edge = None if capture is None else capture.edge_relevance()
        return Propagation(relevance, output.detach(), references, edge, session.flows)


def _or_zeros(gradient: Tensor | None, like: Tensor) -> Tensor:
    """A gradient that autograd left out (the input does not reach the output) is zero."""
    return torch.zeros_like(like) if gradient is None else gradient.detach()


class _Session:
    """The hooks of one propagation: each block's output gets its rule's backward."""

    def __init__(self, engine: LRPEngine, inputs: tuple[Tensor, ...], references: tuple[Tensor, ...],
                 track_conservation: bool, guard: OperationGuard | None) -> None:
        self.engine = engine
        self.guard = guard
        self.inputs = inputs
        self.references = references
        self.deposits: list[Tensor] = [torch.zeros_like(x, requires_grad=False) for x in inputs]
        self.track_conservation = track_conservation
        self.flows: list[LayerFlow] = []
        self._block_inputs: dict[AffineBlock, Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> "_Session":
        try:
            for block in self.engine.blocks:
                if block.first is not block.last:
                    self._handles.append(block.first.register_forward_pre_hook(partial(self._keep_input, block)))
                self._handles.append(block.last.register_forward_hook(partial(self._apply_rule, block)))
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

    def _apply_rule(self, block: AffineBlock, module: nn.Module, args: tuple, z: Tensor):
        a = self._block_inputs.pop(block, None) if block.first is not block.last else args[0]
        if not (isinstance(z, Tensor) and z.requires_grad and isinstance(a, Tensor)):
            return None
        index = input_index(a, self.inputs)
        rule = self.engine.rule_of(block, reads_input=index is not None)
        dtype = z.dtype  # the block's own precision (bfloat16 under autocast): the rule computes in it too
        weight, bias = block.folded(dtype)
        if index is None:
            layer = Affine(a.detach().to(dtype), weight, bias, z.detach(), norm=block.input_norm)
        else:
            origin = self.references[index].to(dtype)
            shift = Affine.forward(origin, weight)  # W x0: the part of z the reference accounts for
            layer = Affine(a.detach().to(dtype) - origin, weight, shift if bias is None else bias + shift, z.detach(),
                           origin=origin, norm=block.input_norm)
        flow = LayerFlow(block.name, rule.name) if self.track_conservation else None
        if flow is not None:
            self.flows.append(flow)
        out = _RuleBackward.apply(a, z.detach(), _Step(rule, layer, index, flow, self))
        if self.guard is not None:
            self.guard.watch_like(out, a)
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
            deposit = step.session.deposits[step.input_index]
            deposit += relevance.to(deposit.dtype)
            gradient = None
        else:
            gradient = step.rule.gradient(layer, grad)
            relevance = layer.input * gradient if step.flow is not None else None
        if step.flow is not None:
            step.flow.add(layer.output * grad, relevance)
        return gradient, None, None
