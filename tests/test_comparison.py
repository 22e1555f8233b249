"""The comparison harness on a small model: every method scored, the sanity checks behave."""
import numpy as np
import torch

from hin_captum.comparison import ComparisonSettings, compare, markdown_table, randomized_copy
from hin_captum.data.synthetic import make_sanity_jets
from tests.factories import random_hin

SETTINGS = ComparisonSettings(batch_size=4, fractions=(0.0, 0.5, 1.0), subset_jets=3, perturbations=2, memory_jets=2)


def test_every_method_gets_every_score_and_the_sanity_checks_behave():
    model = random_hin(seed=1)
    jets = make_sanity_jets(6, seed=1, n_tracks=4)
    methods = {"lrp": {}, "inputxgradient": {}, "random": {"seed": 1}, "gnnexplainer": {"epochs": 3}}
    seen = []

    results = compare(model, jets, methods, SETTINGS, ground_truth_feature=3, progress=seen.append)

    assert seen == list(methods)
    by_name = {r.method: r for r in results}
    columns = set(by_name["lrp"].row)
    assert all(set(r.row) == columns for r in results)
    assert {"ms per jet", "peak MB", "deletion AUC (features)", "fidelity+", "infidelity", "sensitivity",
            "conservation error", "share of |R| on feature 3", "rho after randomization", "rho vs lrp"} <= columns
    assert by_name["lrp"].row["rho vs lrp"] == 1.0
    assert by_name["random"].row["rho after randomization"] == 1.0  # blind to the model: fails the check
    assert by_name["lrp"].row["rho after randomization"] < 1.0
    assert np.isnan(by_name["inputxgradient"].row["conservation error"])
    np.testing.assert_allclose([r.feature_relevance.sum() for r in results], 1.0)
    table = markdown_table(results)
    assert table.count("\n") == len(results) + 1 and "| gnnexplainer |" in table


def test_randomized_copy_reinitialises_the_linear_layers_of_the_copy_only():
    model = random_hin(seed=2, n_features=5, hidden=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clone = randomized_copy(model, seed=0)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    linear = "interactionnetwork.edge_model.edge_mlp.0.weight"
    assert not torch.equal(clone.state_dict()[linear], before[linear])
    assert torch.equal(clone.bn.running_mean, model.bn.running_mean)
