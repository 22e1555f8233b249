"""Metrics that compare explanations (faithfulness, ground truth, agreement, randomization, cost), and jets with
real jets (separability)."""
from .agreement import feature_importance, spearman, spearman_per_graph
from .captum_metrics import captum_infidelity, captum_sensitivity
from .cost import peak_tensor_memory
from .faithfulness import FaithfulnessCurve, faithfulness_curve, fidelity_at_sparsity, top_fraction_mask
from .ground_truth import conservation_error, feature_share, stability, top_feature_rate
from .manifold import jet_statistics, separability_auc

__all__ = [
    "FaithfulnessCurve", "captum_infidelity", "captum_sensitivity", "conservation_error", "faithfulness_curve",
    "feature_importance", "feature_share", "fidelity_at_sparsity", "jet_statistics", "peak_tensor_memory",
    "separability_auc", "spearman", "spearman_per_graph", "stability", "top_feature_rate", "top_fraction_mask",
]
