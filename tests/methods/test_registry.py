"""Every registered method: the same Explanation, finite, for any sequence of calls on one model."""
import copy

import pytest
import torch

import hin_captum
from hin_captum.util import InputError
from hin_captum.methods import METHODS
from hin_captum.models import GATTagger
from tests.factories import jet_batch, random_hin

FAST_OPTIONS = {"gnnexplainer": {"epochs": 5}, "ig": {"n_steps": 8}}


def test_the_registry_has_every_method_of_the_comparison():
    assert {"lrp", "lrp-gamma", "lrp-zplus", "ig", "saliency", "inputxgradient", "gnnexplainer", "captum-lrp",
            "random", "attention"} <= set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_returns_a_finite_explanation_of_the_models_logits(method):
    torch.manual_seed(3)  # the attention baseline needs attention layers: the GAT tagger
    model = GATTagger(n_features=6, hidden=8).eval() if method == "attention" else random_hin(seed=3, n_features=6,
                                                                                               hidden=16)
    data = jet_batch([4, 1, 5], n_features=6, seed=3)
    targets = torch.tensor([1, 0, 1])

    explanation = hin_captum.attribute(model, data, method=method, target=targets, **FAST_OPTIONS.get(method, {}))

    logits = model(data.x, data.edge_index, data.batch).detach()
    assert explanation.method == method
    assert explanation.node.shape == data.x.shape and torch.isfinite(explanation.node).all()
    torch.testing.assert_close(explanation.output, logits[torch.arange(3), targets])
    torch.testing.assert_close(explanation.prediction, logits.softmax(1))
    if explanation.edge is not None:
        assert explanation.edge.shape[0] == data.num_edges and torch.isfinite(explanation.edge).all()
        assert explanation.edge_score.shape == (data.num_edges,)


def test_any_sequence_of_methods_on_one_model_gives_the_results_of_fresh_models():
    model = random_hin(seed=4, n_features=6, hidden=16).train()
    data = jet_batch([5, 3], n_features=6, seed=4)
    state = copy.deepcopy(model.state_dict())
    order = ["gnnexplainer", "ig", "captum-lrp", "lrp", "saliency", "gnnexplainer", "lrp-gamma", "inputxgradient"]

    results = [hin_captum.attribute(model, data, method=m, **FAST_OPTIONS.get(m, {})).node for m in order]

    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    for method, node in zip(order, results):
        fresh = random_hin(seed=4, n_features=6, hidden=16)
        torch.testing.assert_close(node, hin_captum.attribute(fresh, data, method=method,
                                                              **FAST_OPTIONS.get(method, {})).node)
    leftovers = {name for name, module in model.named_modules() for name in vars(module) if name in ("rule", "activations")}
    assert not leftovers


def test_unknown_methods_and_options_are_input_errors():
    model = random_hin(seed=5, n_features=6, hidden=16)
    data = jet_batch([3], n_features=6, seed=5)
    with pytest.raises(InputError, match="unknown method 'shap'.*lrp"):
        hin_captum.attribute(model, data, method="shap")
    with pytest.raises(InputError, match="saliency.*epsilon"):
        hin_captum.attribute(model, data, method="saliency", epsilon=0.1)
    with pytest.raises(InputError, match="n_steps"):
        hin_captum.attribute(model, data, method="ig", n_steps=0)


def test_random_baseline_is_seeded():
    model = random_hin(seed=6, n_features=6, hidden=16)
    data = jet_batch([4, 4], n_features=6, seed=6)
    first, again, other = (hin_captum.attribute(model, data, method="random", seed=s).node for s in (1, 1, 2))
    assert torch.equal(first, again) and not torch.equal(first, other)
