"""Captum's infidelity and sensitivity through the dense view, for batched and per-jet methods."""
import numpy as np
import pytest
import torch

from hin_captum.methods import METHODS
from hin_captum.metrics import captum_infidelity, captum_sensitivity
from tests.factories import jet_batch, random_hin


@pytest.mark.parametrize("name", ["lrp", "captum-lrp"])
def test_infidelity_and_sensitivity_are_per_graph_finite_and_seeded(name):
    model = random_hin(seed=1, n_features=5, hidden=8)
    data = jet_batch([4, 2, 5], n_features=5, seed=1)
    method = METHODS[name](model)
    explanation = method.explain(data)

    infidelity = captum_infidelity(method, data, explanation, noise=0.1, samples=3, seed=0)
    sensitivity = captum_sensitivity(method, data, explanation.target, radius=0.05, samples=3, seed=0)

    assert infidelity.shape == sensitivity.shape == (3,)
    assert np.isfinite(infidelity).all() and np.isfinite(sensitivity).all() and (sensitivity > 0).all()
    np.testing.assert_array_equal(infidelity, captum_infidelity(method, data, explanation, 0.1, 3, 0))
    np.testing.assert_array_equal(sensitivity, captum_sensitivity(method, data, explanation.target, 0.05, 3, 0))

