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
input is seen on every pass (:mod:`hin_captum.lrp.tracing`); the operations between blocks
get their rules, or are refused, in :mod:`hin_captum.lrp.operations`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..util import InputError
from ..util.modes import eval_mode
from .canonization import AffineBlock, find_affine_blocks, propagation_biases
from .composites import Composite
from .affine import Affine
from .edges import GatherCapture
from .operations import OperationRules
from .reference import Reference, resolve_references
from .rules import Rule
from .tracing import input_index

if TYPE_CHECKING:
    from .config import LRPConfig


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
    inner: dict[str, list[InnerRelevance]] = field(default_factory=dict)
    """For each module of :attr:`~hin_captum.lrp.config.LRPConfig.relevance_at`, the relevance of its input at each
    of its calls."""


@dataclass
class InnerRelevance:
    """The input of a module named in ``relevance_at`` at one call, explained like an input of the model."""

    value: Tensor
    relevance: Tensor
    reference: Tensor


class LRPEngine:
    """The affine blocks of ``model`` and their rules under ``config``'s composite, found when the engine is made.

    A block gets the composite's input rule on a pass where it reads an explained
    input; :meth:`rule_of` says which rule a block gets either way. The operations
    between blocks go through :class:`~hin_captum.lrp.operations.OperationRules` on the
    first pass, and on every later one if that pass needed any of its rules.
    """

    def __init__(self, model: nn.Module, config: "LRPConfig") -> None:
        self.model = model
        self.config = config
        composite: Composite = config.rules_of_blocks
        self.composite = composite
        self.blocks = find_affine_blocks(model)
        self.rules: dict[AffineBlock, Rule] = composite.assign(self.blocks)
        """The rule of every block on a pass where it reads no explained input."""
        self.input_rules: dict[AffineBlock, Rule] = composite.assign(self.blocks, reading=self.blocks)
        """The rule of every block on a pass where it reads an explained input."""
        self.needs_operation_rules: bool | None = None
        """Whether the model's operations need rules (None until the first pass has looked)."""
        modules = dict(model.named_modules())
        unknown = [name for name in config.relevance_at if name not in modules]
        if unknown:
            raise InputError(f"relevance_at names no module of the model: {', '.join(unknown)} (modules are "
                             f"{', '.join(name for name in modules if name)[:300]}...)")
        self.inner_modules = {name: modules[name] for name in config.relevance_at}
        """The modules whose inputs are explained too (their upstream is cut there)."""
        self._block_of_weight = {id(block.linear.weight): (block.linear.weight, block) for block in self.blocks
                                 if block.linear is not None}
        self._owner_of = {id(parameter): (parameter, module) for module in model.modules()
                          for parameter in module.parameters(recurse=False)}
        """Kept with the parameter itself, so a later tensor at a freed parameter's address is never taken for it."""

    def rule_of(self, block: AffineBlock, reads_input: bool) -> Rule:
        """The rule of ``block``; an input-only rule (flat, w^2, z^B) on a block that reads no input is refused."""
        rule = (self.input_rules if reads_input else self.rules)[block]
        if rule.input_only and not reads_input:
            raise InputError(f"rule '{rule.name}' is for a block that reads the explained input, but {block.name} "
                             "does not: give it to a block that does (or use the composite's input rule)")
        return rule

    def owner(self, weight: Tensor) -> nn.Module | None:
        """The module whose own parameter ``weight`` is (or is a view of)."""
        for tensor in (weight, getattr(weight, "_base", None)):
            parameter, module = self._owner_of.get(id(tensor), (None, None))
            if tensor is not None and parameter is tensor:
                return module
        return None

    def rule_of_weight(self, weight: Tensor, reads_input: bool) -> tuple[str, Rule]:
        """The name and rule of a linear map used functionally with ``weight``: its block's, else the composite's
        hidden (or input) rule."""
        for tensor in (weight, getattr(weight, "_base", None)):
            parameter, block = self._block_of_weight.get(id(tensor), (None, None))
            if tensor is not None and parameter is tensor:
                return block.name, self.rule_of(block, reads_input)
        owner = self.owner(weight)
        name = next((name for name, module in self.model.named_modules() if module is owner), "<functional linear>")
        rule = self.composite.input if reads_input and self.composite.input is not None else self.composite.hidden
        return name, rule

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
            references = resolve_references(reference, self.model, inputs, run)
            with ExitStack() as stack:
                session = stack.enter_context(_Session(self, inputs, references, track_conservation))
                if self.needs_operation_rules is not False:
                    session.operations = stack.enter_context(OperationRules(
                        self.model, inputs, self.config.attention, affine=session.functional_affine,
                        owner=self.owner, is_active=session.is_active, norm_epsilon=float(self.config.epsilon)))
                capture = None if edge_index is None else stack.enter_context(
                    GatherCapture(edge_index, inputs, references))
                output = run(inputs)
                score = select(output)
            explained = session.inputs
            gradients = torch.autograd.grad(score, explained, allow_unused=True)
            if session.operations is not None:  # known only now: a refusal that fired has raised above
                self.needs_operation_rules = session.operations.applied
        relevance = [session.deposits[index] + (x.detach() - x0) * _or_zeros(gradients[index], x)
                     for index, (x, x0) in enumerate(zip(explained, session.references))]
        inner: dict[str, list[InnerRelevance]] = {}
        for (name, index) in session.inner:
            inner.setdefault(name, []).append(InnerRelevance(explained[index].detach(), relevance[index],
                                                             session.references[index]))
        edge = None if capture is None else capture.edge_relevance()
        return Propagation(tuple(relevance[: len(inputs)]), output.detach(), references, edge, session.flows, inner)


def inner_reference(module: nn.Module, value: Tensor, spec: object) -> Tensor:
    """The reference point of a module's input: under ``auto``, the running mean of the BatchNorm the module begins
    with (channels first for inputs of more than two dimensions), else zero; a number as given."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return torch.full_like(value, float(spec))
    first = module if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) else next(iter(module.children()), None)
    if spec == "auto" and isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)) and first.running_mean is not None:
        mean = first.running_mean.detach().to(value)
        return mean.view(-1, *[1] * (value.dim() - 2)) if value.dim() > 2 else mean
    return value.new_zeros(())


def _or_zeros(gradient: Tensor | None, like: Tensor) -> Tensor:
    """A gradient that autograd left out (the input does not reach the output) is zero."""
    return torch.zeros_like(like) if gradient is None else gradient.detach()


class _Session:
    """The hooks of one propagation: each block's output gets its rule's backward."""

    def __init__(self, engine: LRPEngine, inputs: tuple[Tensor, ...], references: tuple[Tensor, ...],
                 track_conservation: bool) -> None:
        self.engine = engine
        self.operations: OperationRules | None = None
        self.inputs = list(inputs)
        """The explained tensors: the model's inputs, then the inputs of the ``relevance_at`` modules as they come."""
        self.references = list(references)
        self.deposits: list[Tensor] = [torch.zeros_like(x, requires_grad=False) for x in inputs]
        self.inner: list[tuple[str, int]] = []
        """Which explained tensors are the inputs of ``relevance_at`` modules: (module name, position)."""
        self.track_conservation = track_conservation
        self.flows: list[LayerFlow] = []
        self._block_inputs: dict[AffineBlock, Tensor] = {}
        self._active: set[nn.Module] = set()
        self._handles: list = []

    def __enter__(self) -> "_Session":
        try:
            for block in self.engine.blocks:
                if block.first is not block.last:
                    self._handles.append(block.first.register_forward_pre_hook(partial(self._keep_input, block)))
                self._handles.append(block.last.register_forward_hook(partial(self._apply_rule, block)))
                for module in (block.linear, block.norm):
                    if module is not None:
                        self._handles.append(module.register_forward_pre_hook(self._enter_module))
                        self._handles.append(module.register_forward_hook(self._leave_module))
            for name, module in self.engine.inner_modules.items():
                self._handles.append(module.register_forward_pre_hook(partial(self._explain_input_of, name)))
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
        self._active.clear()

    def _enter_module(self, module: nn.Module, args: tuple) -> None:
        self._active.add(module)

    def _leave_module(self, module: nn.Module, args: tuple, output: object) -> None:
        self._active.discard(module)

    def is_active(self, module: nn.Module) -> bool:
        """Whether ``module``'s own forward is running (its block's hooks then rule what it computes)."""
        return module in self._active

    def _explain_input_of(self, name: str, module: nn.Module, args: tuple) -> tuple | None:
        """The module's input, cut from what made it and explained like an input of the model."""
        if not args or not isinstance(args[0], Tensor) or not args[0].is_floating_point():
            return None
        value = args[0].detach().requires_grad_()
        self.inner.append((name, len(self.inputs)))
        self.inputs.append(value)
        self.references.append(inner_reference(module, value, self.engine.config.reference))
        self.deposits.append(torch.zeros_like(value))
        if self.operations is not None:
            self.operations.mark(value, True)
        return (value, *args[1:])

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
        channel_first = block.channel_first(a)
        return self._ruled(rule, block.name, a, z, weight, bias, index, block.input_norm, channel_first)

    def functional_affine(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """``linear(x, weight, bias)`` used outside its module's forward, with its affine rule."""
        index = input_index(x, self.inputs)
        name, rule = self.engine.rule_of_weight(weight, reads_input=index is not None)
        z = torch.nn.functional.linear(x, weight, bias)
        if not z.requires_grad:
            return z
        return self._ruled(rule, name, x, z, weight.detach().to(z.dtype),
                           None if bias is None else bias.detach().to(z.dtype), index, None, False)

    def _ruled(self, rule: Rule, name: str, a: Tensor, z: Tensor, weight: Tensor, bias: Tensor | None,
               index: int | None, norm: nn.Module | None, channel_first: bool) -> Tensor:
        """``z`` again, whose backward is ``rule`` on the affine map ``a -> z`` (channels last for the rule)."""
        dtype = z.dtype
        last = (lambda t: t.movedim(1, -1)) if channel_first else (lambda t: t)
        values = a.detach().to(dtype)
        if index is None:
            layer = Affine(last(values), weight, bias, last(z.detach()), norm=norm)
        else:
            origin = last(self.references[index].to(dtype).expand_as(values)) if channel_first \
                else self.references[index].to(dtype)
            shift = Affine.forward(origin, weight)  # W x0: the part of z the reference accounts for
            layer = Affine(last(values) - origin, weight, shift if bias is None else bias + shift, last(z.detach()),
                           origin=origin, norm=norm)
        flow = LayerFlow(name, rule.name) if self.track_conservation else None
        if flow is not None:
            self.flows.append(flow)
        out = _RuleBackward.apply(a, z.detach(), _Step(rule, layer, index, flow, self, channel_first))
        if self.operations is not None:
            self.operations.watch_like(out, a)
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
    channel_first: bool = False
    """Whether the block's channels are dimension 1 (a convolution): its rule sees them moved last."""


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
        if step.channel_first:
            grad = grad.movedim(1, -1)
        back = (lambda t: t.movedim(-1, 1)) if step.channel_first else (lambda t: t)
        if step.input_index is not None:
            relevance = step.rule.relevance(layer, grad)
            deposit = step.session.deposits[step.input_index]
            deposit += back(relevance).to(deposit.dtype)
            gradient = None
        else:
            gradient = step.rule.gradient(layer, grad)
            relevance = layer.input * gradient if step.flow is not None else None
            gradient = back(gradient)
        if step.flow is not None:
            step.flow.add(layer.output * grad, relevance)
        return gradient, None, None
