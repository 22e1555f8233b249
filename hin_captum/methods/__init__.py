"""Attribution methods behind one registry: ``attribute(model, data, method=NAME)``.

Each module registers one method (or one family, such as the LRP composites).
"""
from . import (  # noqa: F401
    attention, captum_lrp, gnnexplainer, gradients, integrated_gradients, lrp, random_baseline,
)
from .base import METHODS, AttributionMethod, attribute, eval_mode, register, takes_option
from .explanation import Explanation

__all__ = ["METHODS", "AttributionMethod", "Explanation", "attribute", "eval_mode", "register", "takes_option"]
