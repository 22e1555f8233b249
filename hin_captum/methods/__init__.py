"""Attribution methods behind one registry: ``attribute(model, data, method=NAME)``."""
from . import lrp  # noqa: F401  (registers the method)
from .base import METHODS, AttributionMethod, attribute, register
from .explanation import Explanation

__all__ = ["METHODS", "AttributionMethod", "Explanation", "attribute", "register"]
