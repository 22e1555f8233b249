"""PyG's GNNExplainer through ``torch_geometric.explain.Explainer``, one jet at a time."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.explain import Explainer, GNNExplainer

from ..util import InputError
from .base import AttributionMethod, register, single_graphs
from .explanation import Explanation, explanation_of


@register
class GNNExplainerMethod(AttributionMethod):
    """Soft masks on node features (``attributes``) and on edges (``object``), trained for ``epochs``.

    Each jet gets its own optimisation: PyG's loss averages the prediction term
    over the graphs it sees but sums the mask-size term, so optimising a whole
    batch at once would weigh the two differently for every batch size. The
    masks explain the target class (PyG's ``phenomenon`` mode); they are not
    signed. ``seed`` seeds each jet's random mask initialisation, so a jet's masks
    do not depend on the batch around it, without touching the global random state.
    """

    name = "gnnexplainer"
    one_graph_at_a_time = True

    def __init__(self, model: nn.Module, epochs: int = 100, lr: float = 0.01, seed: int = 0) -> None:
        super().__init__(model)
        if epochs < 1:
            raise InputError(f"gnnexplainer needs epochs >= 1, got {epochs}")
        self.seed = seed
        self.explainer = Explainer(
            model=self.model,
            algorithm=GNNExplainer(epochs=epochs, lr=lr),
            explanation_type="phenomenon",
            node_mask_type="attributes",
            edge_mask_type="object",
            model_config=dict(mode="multiclass_classification", task_level="graph", return_type="raw"),
        )

    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        node_mask = torch.zeros_like(data.x)
        edge_mask = data.x.new_zeros((data.num_edges, 1))
        with torch.random.fork_rng(devices=[]):
            for index, (nodes, edges, graph) in enumerate(single_graphs(data)):
                torch.manual_seed(self.seed)  # per jet, so a jet's masks do not depend on its place in the batch
                masks = self.explainer(graph.x, graph.edge_index, target=target[index : index + 1],
                                       **self.tagger.forward_fields(graph))
                node_mask[nodes] = masks.node_mask
                edge_mask[edges, 0] = masks.edge_mask
        return explanation_of(self.name, data, target, self.logits(data), node_mask, edge_mask)
