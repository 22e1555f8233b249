"""LRP by gradient modification: rules, composites, canonization, reference points, the engine and the Captum class."""
from .affine import Affine
from .attribution import LRP
from .canonization import AffineBlock, UnsupportedModuleError, find_affine_blocks
from .composites import COMPOSITES, Composite, make_composite
from .config import PRECISIONS, LRPConfig, Propagator
from .edges import GatherCapture
from .engine import ConservationReport, LayerFlow, LRPEngine, Propagation
from .operations import OperationRules
from .reference import REFERENCES, InputNorms, Reference, track_mean
from .rules import (
    DEFAULT_EPSILON, RULES, AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, WSquare, ZBox, ZPlus, parse_rule,
)

__all__ = [
    "Affine", "AffineBlock", "AlphaBeta", "COMPOSITES", "Composite", "ConservationReport", "DEFAULT_EPSILON",
    "Epsilon", "Flat", "GatherCapture", "Gamma", "InputNorms", "LRP", "LRPConfig", "LRPEngine", "LayerFlow",
    "OperationRules", "PRECISIONS", "Pass", "Propagation", "Propagator", "REFERENCES", "RULES", "Reference", "Rule",
    "UnsupportedModuleError", "WSquare", "ZBox", "ZPlus", "find_affine_blocks", "make_composite", "parse_rule",
    "track_mean",
]
