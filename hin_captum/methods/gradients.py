"""Plain gradient baselines from Captum: saliency and input x gradient (from a reference point)."""
from __future__ import annotations

from captum.attr import Saliency
from torch import Tensor, nn
from torch_geometric.data import Batch

from ..lrp.reference import Reference
from ..models.tagger import jet_reference
from .base import register
from .captum_attribution import CaptumMethod
from .explanation import Explanation, explanation_of


@register
class SaliencyMethod(CaptumMethod):
    """Captum ``Saliency``: ``|d logit / d x|``; unsigned, so it says where, not which way."""

    name = "saliency"
    captum_class = Saliency


@register
class InputXGradientMethod(CaptumMethod):
    """``(x - x0) * d logit / d x``: the gradient (Captum ``Saliency``, signed) times the departure from the reference.

    With ``reference="zero"`` this is Captum's ``InputXGradient``. For a ReLU network
    it equals LRP with epsilon 0 everywhere, measured from the same reference.
    """

    name = "inputxgradient"
    conserves = True
    captum_class = Saliency
    attribute_options = {"abs": False}

    def __init__(self, model: nn.Module, reference: Reference = "auto") -> None:
        super().__init__(model)
        self.reference = reference

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        reference = jet_reference(self.reference, self.tagger, data)
        gradient, output = self._attribute(data, target)
        return explanation_of(self.name, data, target, output, (data.x - reference) * gradient, reference=reference)
