"""The attention baseline: the attention a track receives, from the layers' own attention weights."""
import pytest
import torch

import hin_captum
from hin_captum.models import GATTagger
from hin_captum.util import InputError
from tests.factories import jet_batch, random_hin


def test_gat_attention_is_the_coefficients_each_track_sends_averaged_over_heads_and_layers():
    torch.manual_seed(0)
    model = GATTagger(n_features=6, hidden=8, heads=3, layers=2).eval()
    data = jet_batch([5, 4], n_features=6, seed=1)
    expected = torch.zeros(data.num_edges)
    with torch.no_grad():  # PyG's own attention weights, per layer (return_attention_weights)
        h = model.bn(data.x)
        for conv in model.convs:
            out, (_, alpha) = conv(h, data.edge_index, return_attention_weights=True)
            expected += alpha.mean(1) / len(model.convs)
            h = out.relu()
    score = torch.zeros(data.num_nodes).index_add_(0, data.edge_index[0], expected)

    explanation = hin_captum.attribute(model, data, method="attention")
    torch.testing.assert_close(explanation.edge[:, 0], expected)
    torch.testing.assert_close(explanation.node, (score / 6)[:, None].expand(-1, 6))


def test_a_model_without_attention_is_refused():
    with pytest.raises(InputError, match="method 'attention' reads PyG attention layers"):
        hin_captum.attribute(random_hin(seed=0, hidden=8), jet_batch([3]), method="attention")
