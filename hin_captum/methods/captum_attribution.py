"""Captum's gradient attributions on a graph batch: ``x`` is the input, the batch's other fields ride along."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from captum.attr import GradientAttribution
from torch import Tensor, nn
from torch_geometric.data import Batch

from ..lrp.attribution import check_rows
from .base import AttributionMethod
from .explanation import Explanation, explanation_of


@contextmanager
def recorded_output(model: nn.Module) -> Iterator[list[Tensor]]:
    """Collects the model's outputs during the block, so methods need no extra forward pass for the logits."""
    outputs: list[Tensor] = []
    handle = model.register_forward_hook(lambda module, args, output: outputs.append(output.detach()))
    try:
        yield outputs
    finally:
        handle.remove()


class CaptumMethod(AttributionMethod):
    """A Captum ``GradientAttribution`` applied to node features, one call for the whole batch.

    Subclasses name the Captum class in ``captum_class`` and may pass it fixed
    ``attribute_options``.
    """

    captum_class: type[GradientAttribution]
    attribute_options: dict[str, Any] = {}

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        node, output = self._attribute(data, target)
        return explanation_of(self.name, data, target, output, node)

    def _attribute(self, data: Batch, target: Tensor) -> tuple[Tensor, Tensor]:
        """The Captum attribution of the node features, and the model's output on the way."""
        def forward(x: Tensor) -> Tensor:
            logits = self.tagger.logits(x, data)
            check_rows(logits, data.num_graphs)
            return logits

        with recorded_output(self.model) as outputs:
            node = self.captum_class(forward).attribute(
                data.x.detach().clone().requires_grad_(), target=target, **self.attribute_options)
        return node, outputs[0]
