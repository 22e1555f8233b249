"""Deletion / insertion curves and PyG fidelity against masks and predictions computed by hand."""
import numpy as np
import pytest
import torch

import hin_captum
from hin_captum.util import InputError
from hin_captum.metrics import faithfulness_curve, fidelity_at_sparsity, top_fraction_mask
from tests.factories import jet_batch, random_hin


def top_by_hand(relevance: np.ndarray, batch: np.ndarray, fraction: float) -> np.ndarray:
    mask = np.zeros_like(relevance, dtype=bool)
    for graph in np.unique(batch):
        rows = np.flatnonzero(batch == graph)
        values = relevance[rows].reshape(-1)
        keep = int(np.round(fraction * values.size))
        chosen = np.argsort(-values, kind="stable")[:keep]
        flat = np.zeros(values.size, dtype=bool)
        flat[chosen] = True
        mask[rows] = flat.reshape(len(rows), -1)
    return mask


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 1.0])
def test_top_fraction_mask_picks_the_most_relevant_features_of_each_graph(fraction):
    model = random_hin(seed=1, n_features=5, hidden=8)
    data = jet_batch([3, 6, 2], n_features=5, seed=1)
    explanation = hin_captum.attribute(model, data)
    expected = top_by_hand(explanation.node.numpy(), data.batch.numpy(), fraction)
    assert np.array_equal(top_fraction_mask(explanation, fraction).numpy(), expected)


@pytest.mark.parametrize("reference", ["auto", "zero"])
def test_deletion_and_insertion_curves_move_features_to_the_reference(reference):
    model = random_hin(seed=2, n_features=5, hidden=8)
    data = jet_batch([4, 3], n_features=5, seed=2)
    explanation = hin_captum.attribute(model, data, target=torch.tensor([1, 0]))
    fractions = np.array([0.0, 0.3, 1.0])
    x0 = model.bn.running_mean if reference == "auto" else torch.zeros(5)

    deletion = faithfulness_curve(model, data, explanation, fractions, "deletion", reference=reference)
    insertion = faithfulness_curve(model, data, explanation, fractions, "insertion", reference=reference)

    for column, fraction in enumerate(fractions):
        mask = torch.from_numpy(top_by_hand(explanation.node.numpy(), data.batch.numpy(), fraction))
        for curve, x in ((deletion, torch.where(mask, x0, data.x)), (insertion, torch.where(mask, data.x, x0))):
            logits = model(x, data.edge_index, data.batch).detach()
            expected = logits[torch.arange(2), explanation.target]
            np.testing.assert_allclose(curve.logit[:, column], expected.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(curve.probability[:, column],
                                       logits.softmax(1)[torch.arange(2), explanation.target].numpy(), rtol=1e-5)
    assert deletion.area().shape == (2,)


def test_aopc_is_the_mean_drop_of_the_logit_for_deletion_and_the_mean_rise_for_insertion():
    model = random_hin(seed=5, n_features=5, hidden=8)
    data = jet_batch([4, 6], n_features=5, seed=5)
    explanation = hin_captum.attribute(model, data)
    fractions = np.linspace(0, 1, 6)  # equal steps: the trapezoid mean is the mean of the step midpoints

    for mode, sign in (("deletion", -1), ("insertion", 1)):
        curve = faithfulness_curve(model, data, explanation, fractions, mode)
        change = sign * (curve.logit - curve.logit[:, :1])
        np.testing.assert_allclose(curve.aopc(), ((change[:, 1:] + change[:, :-1]) / 2).mean(1), rtol=1e-6)
    with pytest.raises(InputError, match="fractions must rise from 0"):
        faithfulness_curve(model, data, explanation, np.array([0.1, 0.5]))


def test_track_deletion_removes_whole_tracks():
    model = random_hin(seed=3, n_features=5, hidden=8)
    data = jet_batch([4, 4], n_features=5, seed=3)
    explanation = hin_captum.attribute(model, data)
    mask = top_fraction_mask(explanation, 0.5, unit="track")
    assert (mask.all(1) | ~mask.any(1)).all()
    assert mask.all(1).sum() == 4  # two of the four tracks of each graph


def test_pyg_fidelity_matches_prediction_changes_counted_by_hand():
    model = random_hin(seed=4, n_features=5, hidden=8)
    data = jet_batch([4, 3, 5, 2, 6], n_features=5, seed=4)
    explanation = hin_captum.attribute(model, data)

    plus, minus = fidelity_at_sparsity(model, data, explanation, sparsity=0.7)

    mask = torch.from_numpy(top_by_hand(explanation.node.numpy(), data.batch.numpy(), 0.3))
    predict = lambda x: model(x, data.edge_index, data.batch).argmax(1)  # noqa: E731
    original = predict(data.x)
    assert plus == pytest.approx((predict(data.x * ~mask) != original).float().mean().item())
    assert minus == pytest.approx((predict(data.x * mask) != original).float().mean().item())
