"""Plain gradient baselines from Captum: saliency and input x gradient."""
from __future__ import annotations

from captum.attr import InputXGradient, Saliency

from .base import register
from .captum_attribution import CaptumMethod


@register
class SaliencyMethod(CaptumMethod):
    """Captum ``Saliency``: ``|d logit / d x|``; unsigned, so it says where, not which way."""

    name = "saliency"
    captum_class = Saliency


@register
class InputXGradientMethod(CaptumMethod):
    """Captum ``InputXGradient``: ``x * d logit / d x``, LRP-0 for ReLU networks without biases."""

    name = "inputxgradient"
    captum_class = InputXGradient
