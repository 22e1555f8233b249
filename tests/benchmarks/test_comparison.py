"""The comparison harness on a small model: every method scored, the sanity checks behave."""
import numpy as np
import torch

from hin_captum.benchmarks.comparison import ComparisonSettings, GroundTruth, compare, markdown_table, randomized_copy
from hin_captum.data.synthetic import make_sanity_jets
from tests.factories import random_hin

SETTINGS = ComparisonSettings(batch_sizes=(2, 4), fractions=(0.0, 0.5, 1.0), subset_jets=3, perturbations=2, memory_jets=2)


def test_every_method_gets_every_score_and_the_sanity_checks_behave():
    model = random_hin(seed=1)
    jets = make_sanity_jets(6, seed=1, n_tracks=4)
    methods = {"lrp": {"epsilon": 1e-9}, "inputxgradient": {}, "random": {"seed": 1}, "gnnexplainer": {"epochs": 3}}
    seen = []

    results = compare(model, jets, methods, SETTINGS, ground_truth=GroundTruth(3, (0, 3)), progress=seen.append)

    assert seen == list(methods)
    by_name = {r.method: r for r in results}
    columns = set(by_name["lrp"].row)
    assert all(set(r.row) == columns for r in results)
    assert {"ms per jet", "peak MB", "deletion AOPC (features)", "deletion AOPC (tracks)", "insertion AOPC (features)",
            "fidelity+", "infidelity", "sensitivity", "sum R vs logit (corr)", "|sum R - logit| / |logit|",
            "share of |R| on planted features", "decisive feature ranked first", "rho after randomization",
            "rho vs lrp"} <= columns
    assert by_name["lrp"].row["batch size"] in (2, 4) and by_name["gnnexplainer"].row["batch size"] == 4
    assert by_name["lrp"].row["rho vs lrp"] == 1.0
    assert by_name["random"].row["rho after randomization"] == 1.0  # blind to the model: fails the check
    assert by_name["lrp"].row["rho after randomization"] < 1.0
    assert np.isnan(by_name["gnnexplainer"].row["|sum R - logit| / |logit|"])  # masks do not add up to anything
    # LRP with a tiny epsilon is input x gradient from the same reference: the same ranking, the same scores
    assert by_name["lrp"].row["deletion AOPC (features)"] == by_name["inputxgradient"].row["deletion AOPC (features)"]
    np.testing.assert_allclose([r.feature_relevance.sum() for r in results], 1.0)
    assert all(r.curves["deletion"].shape == (3,) and r.curves["insertion"].shape == (3,) for r in results)
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


def test_the_lean_comparison_of_labelled_variants_gives_the_composite_study_scores():
    model = random_hin(seed=3, n_features=48, hidden=16)
    jets = make_sanity_jets(4, seed=2, n_tracks=4)
    variants = {"ig": {"n_steps": 32}, "gamma (zero)": {"method": "lrp", "composite": "gamma", "reference": "zero"}}

    results = compare(model, jets, variants, SETTINGS, full=False)

    assert [r.method for r in results] == ["ig", "gamma (zero)"]
    assert "infidelity" not in results[1].row and "deletion AOPC (features)" in results[1].row
    # IG sums to the change of the logit from the reference jet
    assert results[0].row["|sum R - Δlogit| / |Δlogit|"] < 0.05
