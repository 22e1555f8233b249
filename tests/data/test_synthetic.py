"""The HIN-LRP sanity-check jets."""
import numpy as np
import pytest
import torch

from hin_captum.data import make_sanity_jets
from hin_captum.util import InputError


@pytest.fixture(scope="module")
def jets():
    return make_sanity_jets(2000, seed=11)


def test_shapes(jets):
    assert len(jets) == 2000
    for jet in jets[:50]:
        assert jet.x.shape == (10, 48) and jet.x.dtype == torch.float32
        assert jet.edge_index.shape == (2, 90)
        assert jet.y.shape == (1,) and jet.y.dtype == torch.long


def test_track_count_is_configurable():
    jet = make_sanity_jets(3, seed=0, n_tracks=4)[0]
    assert jet.x.shape == (4, 48) and jet.edge_index.shape == (2, 12)


def test_same_seed_same_jets_other_seed_other_jets(jets):
    again = make_sanity_jets(2000, seed=11)
    other = make_sanity_jets(2000, seed=12)

    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(jets, again, strict=True))
    assert not torch.equal(jets[0].x, other[0].x)


def test_labels_follow_the_rule_on_the_noise_free_values(jets):
    x = torch.stack([jet.x for jet in jets]).numpy()
    labels = np.array([jet.y.item() for jet in jets])
    # The added values are multiples of 10 and the noise is N(0, 1): rounding recovers them.
    added_0 = np.round(x[:, :, 0] / 10) * 10
    added_3 = np.round(x[:, :, 3] / 10) * 10

    assert set(np.unique(added_0)) == {0.0, 10.0}
    assert set(np.unique(added_3)) == {-20.0, -10.0, 0.0, 10.0}
    np.testing.assert_array_equal(labels, ((added_0 + 2 * added_3).mean(axis=1) > 0).astype(int))


def test_both_classes_with_the_recipe_balance(jets):
    share = np.mean([jet.y.item() for jet in jets])
    # Per track a0 + 2 a3 has mean -5 and sd ~22; a positive mean over 10 tracks is the minority class.
    assert 0.15 < share < 0.35


def test_other_features_are_standard_noise(jets):
    x = torch.cat([jet.x for jet in jets]).numpy()
    noise = np.delete(x, [0, 3], axis=1)

    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(noise.std(axis=0), 1.0, atol=0.03)


@pytest.mark.parametrize("n_jets, n_tracks, message", [(0, 10, "n_jets"), (5, 1, "at least 2 tracks")])
def test_bad_sizes_are_input_errors(n_jets, n_tracks, message):
    with pytest.raises(InputError, match=message):
        make_sanity_jets(n_jets, seed=0, n_tracks=n_tracks)
