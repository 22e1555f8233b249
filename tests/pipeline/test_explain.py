"""The explain loop's batches: at most ``batch_size`` jets and ``max_edges`` edges, a bigger jet alone, and the
relevance of a jet independent of the batch it falls in."""
import numpy as np
import pytest

from hin_captum.pipeline import explain_sample
from hin_captum.pipeline.explain import batches
from tests.pipeline.test_distributed import assert_same_results
from tests.pipeline.test_run import settings
from tests.scripts.test_attribute import write_toy


def test_batches_cover_the_jets_in_order_within_both_budgets():
    tracks = np.random.default_rng(3).integers(1, 160, size=500)
    edges = tracks * (tracks - 1)

    for batch_size, max_edges in [(64, None), (64, 20_000), (7, 50_000), (1000, 1)]:
        slices = batches(edges, batch_size, max_edges)

        assert [s.start for s in slices] == [0] + [s.stop for s in slices[:-1]] and slices[-1].stop == len(tracks)
        for s in slices:
            assert 1 <= s.stop - s.start <= batch_size
            if max_edges is not None and s.stop - s.start > 1:
                assert edges[s].sum() <= max_edges
            if s.stop < len(tracks) and s.stop - s.start < batch_size:  # cut by the edge budget: the next jet
                assert max_edges is not None and edges[s.start:s.stop + 1].sum() > max_edges  # would not fit
    assert all(s.stop - s.start == 1 for s in batches(edges, 64, 1))  # every jet above the budget: alone


@pytest.mark.parametrize("max_edges", [1, 5_000])
def test_an_edge_budget_changes_the_batches_not_the_relevance(tmp_path, max_edges):
    inputs = [write_toy(tmp_path / "a.root", 30, seed=71)]
    explain_sample(settings(inputs, tmp_path / "one_batch", batch_size=64, step_size=100, max_edges=None))

    explain_sample(settings(inputs, tmp_path / "budget", batch_size=64, step_size=100, max_edges=max_edges))

    assert_same_results(tmp_path / "budget", tmp_path / "one_batch", names=("a.root",))
