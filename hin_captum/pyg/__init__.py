"""hin_captum's LRP behind PyG's ``torch_geometric.explain.Explainer``, for any model the hooks cover."""
from .explainer import LRPExplainer

__all__ = ["LRPExplainer"]
