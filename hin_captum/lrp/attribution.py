"""LRP as a Captum attribution method."""
from __future__ import annotations

from typing import Mapping

from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric
from captum.attr import InputXGradient
from torch import nn

from .canonization import find_affine_blocks
from .composites import Composite, make_composite
from .engine import LRPHooks
from .guard import OperationGuard
from .rules import DEFAULT_EPSILON, Rule


class LRP(InputXGradient):
    """Layer-wise relevance propagation: Captum's input x gradient, run with LRP gradients.

    One forward and one backward pass per call, for a whole batch. ``model``
    must be an ``nn.Module`` (its Linear and BatchNorm1d layers get the rules).
    Graph models take ``additional_forward_args=(edge_index, batch)``; ``target``
    is one class for all graphs or a tensor with one class per graph.
    """

    def __init__(
        self,
        model: nn.Module,
        composite: str | Composite | None = None,
        rules: Mapping[str, str | Rule] | None = None,
        epsilon: float = DEFAULT_EPSILON,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError("LRP needs an nn.Module: its layers carry the rules")
        super().__init__(model)
        self.rules = make_composite(composite, rules, epsilon).assign(find_affine_blocks(model))
        """The rule of every affine block, fixed when the attribution is made."""

    def hooks(self, track_conservation: bool = False) -> LRPHooks:
        """A fresh hook context with this attribution's rules."""
        return LRPHooks(self.forward_func, self.rules, track_conservation)

    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
        hooks: LRPHooks | None = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Relevance of every input element. Pass an unentered ``hooks`` to read its output and flows afterwards."""
        explained = inputs if isinstance(inputs, tuple) else (inputs,)
        with hooks or self.hooks(), OperationGuard(self.forward_func, explained):
            return super().attribute(inputs, target=target, additional_forward_args=additional_forward_args)
