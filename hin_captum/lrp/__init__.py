"""LRP by gradient modification: rules, composites, canonization, edge capture, and the Captum class."""
from .attribution import LRP
from .canonization import AffineBlock, UnsupportedModuleError, find_affine_blocks
from .composites import COMPOSITES, Composite, make_composite
from .edges import GatherCapture
from .engine import ConservationReport, LayerFlow, LRPHooks
from .guard import OperationGuard
from .rules import DEFAULT_EPSILON, RULES, Epsilon, Gamma, Pass, Rule, ZPlus, parse_rule

__all__ = [
    "AffineBlock", "COMPOSITES", "Composite", "ConservationReport", "DEFAULT_EPSILON", "Epsilon",
    "GatherCapture", "Gamma", "LRP", "LRPHooks", "LayerFlow", "OperationGuard", "Pass", "RULES", "Rule",
    "UnsupportedModuleError", "ZPlus", "find_affine_blocks", "make_composite", "parse_rule",
]
