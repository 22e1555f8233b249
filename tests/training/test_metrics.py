"""ROC AUC and background rejection against direct counting."""
import numpy as np
import pytest

from hin_captum.training import background_rejection, roc_auc


def pairwise_auc(labels, scores):
    """Fraction of (signal, background) pairs ranked right, ties counting one half."""
    signal, background = scores[labels == 1], scores[labels == 0]
    wins = (signal[:, None] > background[None]).sum() + 0.5 * (signal[:, None] == background[None]).sum()
    return wins / (len(signal) * len(background))


@pytest.mark.parametrize("seed", [0, 1])
def test_auc_equals_the_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(size=400) + labels, 1)  # rounding makes ties
    assert roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)


def test_background_rejection_on_a_hand_made_ranking():
    # 4 signal jets, 10 background jets; at 50% signal efficiency the cut keeps the 2 best signal
    # jets and the 1 background jet scored between them.
    scores = np.array([0.9, 0.85, 0.8, 0.1, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.12, 0.11, 0.05])
    labels = np.array([1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert background_rejection(labels, scores, 0.5) == pytest.approx(10.0)
    assert roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores))


def test_perfect_separation_has_infinite_rejection():
    labels = np.array([0, 0, 1, 1])
    assert background_rejection(labels, np.array([0.1, 0.2, 0.8, 0.9]), 0.5) == float("inf")
    with pytest.raises(ValueError, match="both signal and background"):
        roc_auc(np.ones(3), np.arange(3.0))
