"""LRP as a Captum attribution method."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Mapping

from captum._utils.common import (
    _format_output, _format_tensor_into_tuples, _is_tuple, _run_forward, _select_targets,
)
from captum._utils.typing import TargetType, TensorOrTupleOfTensorsGeneric
from captum.attr import GradientAttribution
from torch import Tensor, nn

from .composites import Composite, make_composite
from .engine import Propagation, check_precision, engine_for
from .reference import Reference
from .rules import DEFAULT_EPSILON, Rule


class LRP(GradientAttribution):
    """Layer-wise relevance propagation as a Captum attribution: one forward and one backward pass per call.

    ``model`` must be an ``nn.Module`` (its Linear and BatchNorm1d layers get the
    rules). Graph models take ``additional_forward_args=(edge_index, batch)``;
    ``target`` is one class for all graphs or a tensor with one class per graph.
    Relevance is measured from ``reference`` (see :mod:`hin_captum.lrp.reference`);
    ``precision`` may run the matrix products in TF32 or bfloat16 (:data:`~hin_captum.lrp.engine.PRECISIONS`).
    """

    def __init__(
        self,
        model: nn.Module,
        composite: str | Composite | None = None,
        rules: Mapping[str, str | Rule] | None = None,
        epsilon: float = DEFAULT_EPSILON,
        reference: Reference = "auto",
        precision: str = "float32",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError("LRP needs an nn.Module: its layers carry the rules")
        super().__init__(model)
        self.engine = engine_for(model, make_composite(composite, rules, epsilon))
        self.reference = reference
        self.precision = check_precision(precision)

    @property
    def rules(self) -> dict:
        """The rule of every affine block, fixed when the attribution is made."""
        return self.engine.rules

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    def attribute(
        self,
        inputs: TensorOrTupleOfTensorsGeneric,
        target: TargetType = None,
        additional_forward_args: object = None,
        reference: Reference | Sequence[Reference] | None = None,
    ) -> TensorOrTupleOfTensorsGeneric:
        """Relevance of every input element for ``target``, measured from ``reference`` (the attribution's own if None)."""
        is_tuple = _is_tuple(inputs)
        result = self.propagate(_format_tensor_into_tuples(inputs), target, additional_forward_args, reference)
        return _format_output(is_tuple, result.relevance)

    def propagate(
        self,
        inputs: tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: object = None,
        reference: Reference | Sequence[Reference] | None = None,
        edge_index: Tensor | None = None,
        track_conservation: bool = False,
    ) -> Propagation:
        """The whole result of one pass: relevance, the model's output, references, edge relevance (with
        ``edge_index``) and (optionally) layer flows."""
        return self.engine.propagate(
            inputs,
            run=lambda xs: _run_forward(self.forward_func, xs, None, additional_forward_args),
            select=lambda output: _select_targets(output, target).sum(),
            reference=self.reference if reference is None else reference,
            edge_index=edge_index,
            track_conservation=track_conservation,
            precision=self.precision,
        )
