"""LRP as a Captum attribution method."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from captum.attr import GradientAttribution
from torch import Tensor, nn

from ..util import InputError
from .config import LRPConfig, Propagator
from .engine import Propagation
from .reference import Reference

Target = int | Sequence[int] | Tensor | None
"""One output index for every example, one per example (a list or a ``[B]`` tensor), or None for a model with
one output per example."""


class LRP(GradientAttribution):
    """Layer-wise relevance propagation as a Captum attribution: one forward and one backward pass per call.

    ``model`` must be an ``nn.Module`` (its Linear and BatchNorm1d layers get the
    rules). Graph models take ``additional_forward_args=(edge_index, batch)``.
    ``options`` are those of :class:`~hin_captum.lrp.config.LRPConfig`: composite,
    rules, epsilon, reference (see :mod:`hin_captum.lrp.reference`) and precision.
    """

    def __init__(self, model: nn.Module, **options: Any) -> None:
        if not isinstance(model, nn.Module):
            raise InputError("LRP needs an nn.Module: its layers carry the rules")
        super().__init__(model)
        self.config = LRPConfig.of(options, "LRP")
        self.propagator = Propagator(self.config)

    @property
    def rules(self) -> dict:
        """The rule of every affine block on a pass where it reads no explained input (the blocks that do get the
        composite's input rule, see :meth:`~hin_captum.lrp.engine.LRPEngine.rule_of`)."""
        return self.propagator.engine(self.forward_func).rules

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: Target = None,
        additional_forward_args: object = None,
        reference: Reference | Sequence[Reference] | None = None,
    ) -> Tensor | tuple[Tensor, ...]:
        """Relevance of every input element for ``target``, measured from ``reference`` (the configuration's if
        None); a tuple of inputs gives a tuple of relevances."""
        is_tuple = isinstance(inputs, tuple)
        result = self.propagate(inputs if is_tuple else (inputs,), target, additional_forward_args, reference)
        return result.relevance if is_tuple else result.relevance[0]

    def propagate(
        self,
        inputs: tuple[Tensor, ...],
        target: Target = None,
        additional_forward_args: object = None,
        reference: Reference | Sequence[Reference] | None = None,
        edge_index: Tensor | None = None,
        track_conservation: bool = False,
    ) -> Propagation:
        """The whole result of one pass: relevance, the model's output, references, edge relevance (with
        ``edge_index``) and (optionally) layer flows."""
        extra = () if additional_forward_args is None else (
            additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,))
        return self.propagator.propagate(
            self.forward_func, inputs,
            run=lambda xs: self.forward_func(*xs, *extra),
            select=lambda output: selected_outputs(output, target).sum(),
            edge_index=edge_index, track_conservation=track_conservation, reference=reference,
        )


def selected_outputs(output: Tensor, target: Target, unit: str = "example", rows: int | None = None) -> Tensor:
    """The explained output of every ``unit`` (example, graph) ``[B]``: ``output[:, target]``, one index per
    example, or the output itself for a model with one output per example. A target that does not fit, or an
    output without the expected ``rows`` (one per graph: a node-level model gives one per node), is refused in one
    line."""
    if rows is not None:
        check_rows(output, rows, unit)
    outputs = output.shape[1:].numel()
    if target is None:
        if outputs != 1:
            raise InputError(f"the model gives {outputs} outputs per {unit}: pass target= the index of the one to "
                             f"explain (or one index per {unit})")
        return output.reshape(len(output))
    flat = output.reshape(len(output), -1)
    index = torch.as_tensor(target, device=output.device).long().reshape(-1)
    if index.numel() not in (1, len(flat)):
        raise InputError(f"give one target for all {len(flat)} {unit}s or one per {unit}, got {index.numel()}")
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= outputs):
        raise InputError(f"target {target_text(target)} is out of range: the model gives {outputs} outputs per "
                         f"{unit} (0 to {outputs - 1})")
    return flat.gather(1, index.expand(len(flat))[:, None]).squeeze(1)


def check_rows(output: Tensor, rows: int, unit: str = "graph") -> None:
    """Refuse an output without one row per ``unit`` (a node-level model gives one per node) in one line."""
    if len(output) != rows:
        raise InputError(f"the model gives {len(output)} output rows for {rows} {unit}(s): hin_captum.attribute "
                         f"explains one output per {unit}; explain a node-level model's nodes with PyG's Explainer "
                         "and hin_captum.pyg.LRPExplainer (model_config task_level='node', index=<node>)")


def target_text(target: Target) -> str:
    """A target as the user wrote it, for messages (the out-of-range values of a tensor)."""
    if isinstance(target, Tensor) and target.numel() > 1:
        return str(sorted(set(target.reshape(-1).tolist())))
    return str(int(target) if isinstance(target, Tensor) else target)
