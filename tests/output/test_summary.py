"""The global summary: histograms filled as counted by hand, written and read back bin for bin, added exactly."""
import numpy as np
import pytest
import torch

from hin_captum.config import load_config
from hin_captum.data import RootJetReader, write_toy_root
from hin_captum.util import InputError
from hin_captum.methods import METHODS
from hin_captum.output import RelevanceSummary
from hin_captum.data.schema import CMS_HBB
from hin_captum.pipeline.explain import explain_chunk
from hin_captum.models.tagger import as_tagger
from hin_captum.output.summary import value_ranges
from tests.factories import random_hin

COORDINATES = {"eta": "track_etarel", "phi": "track_phirel", "pt": "track_pt"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    model = random_hin(seed=3, hidden=8)
    path = write_toy_root(tmp_path_factory.mktemp("toy") / "toy.root", 30, seed=5)
    chunks = list(RootJetReader(path, step_size=12).chunks(0))
    return model, [explain_chunk(METHODS["lrp"](model), chunk, 7, 1, torch.device("cpu"), CMS_HBB) for chunk in chunks]


def empty(model, table):
    return RelevanceSummary.empty(table.features, table.classes, "Hbb", "lrp", value_ranges(*as_tagger(model).input_statistics(len(table.features)), table.features))


def test_the_histograms_hold_what_is_counted_by_hand(tables):
    model, (table, *_) = tables
    summary = empty(model, table)
    summary.add(table, COORDINATES)
    h = summary.histograms
    per_jet = table.per_jet_sum(np.abs(table.node))
    predicted = table.prediction.argmax(1)

    assert summary.jets == table.num_jets == h["jets"].values().sum()
    for true in (0, 1):
        for guess in (0, 1):
            chosen = (table.label == true) & (predicted == guess)
            np.testing.assert_allclose(h["feature_abs"].values()[:, true, guess], per_jet[chosen].sum(0), rtol=1e-6)
            top = np.argsort(-per_jet[chosen], axis=1)[:, :3]
            np.testing.assert_array_equal(h["feature_top"].values()[:, true, guess],
                                          np.bincount(top.ravel(), minlength=48))
    hardest = np.array([int(np.argmax(table.x[table.track_slice(j), 0])) + table.track_slice(j).start
                        for j in range(table.num_jets)])  # track_pt is column 0: rank 0 is the hardest track
    np.testing.assert_allclose(h["rank_signed"].values()[0].sum(), table.node[hardest].sum(), rtol=1e-5)
    assert h["edge_pairs"].values(flow=True).sum() == table.edges_per_jet.sum()
    np.testing.assert_allclose(h["edge_signed"].values(flow=True).sum(), table.edge_relevance.sum(), rtol=1e-4,
                               atol=1e-6)
    assert h["mass_jets"].values(flow=True).sum() == table.num_jets
    charge = table.features.index("track_charge")
    assert h[f"value_{charge}"].values(flow=True).sum() == len(table.node)
    np.testing.assert_array_equal(h[f"value_{charge}"].axes[0].edges, [-1, 0, 1, 2])  # discrete: one bin a value


def test_summaries_of_chunks_add_up_to_the_summary_of_all(tables):
    model, chunk_tables = tables
    together, added = empty(model, chunk_tables[0]), None
    for table in chunk_tables:
        together.add(table, COORDINATES)
        single = empty(model, table)
        single.add(table, COORDINATES)
        added = single if added is None else added + single
    assert added.jets == together.jets
    for name, histogram in together.histograms.items():
        np.testing.assert_allclose(added.histograms[name].values(flow=True), histogram.values(flow=True),
                                   rtol=1e-12, atol=1e-12)


def test_a_written_summary_reads_back_bin_for_bin_and_adds_to_a_fresh_one(tmp_path, tables):
    model, (table, *_) = tables
    summary = empty(model, table)
    summary.add(table, COORDINATES)
    summary.write(tmp_path / "summary.root")

    back = RelevanceSummary.read(tmp_path / "summary.root")

    assert (back.features, back.classes, back.target, back.method, back.jets) == (
        summary.features, summary.classes, "Hbb", "lrp", summary.jets)
    for name, histogram in summary.histograms.items():
        np.testing.assert_array_equal(back.histograms[name].view(flow=True), histogram.view(flow=True))
    doubled = back + summary
    np.testing.assert_allclose(doubled.histograms["feature_abs"].values(),
                               2 * summary.histograms["feature_abs"].values())
    assert back.config == load_config("summary")


def test_reading_a_file_without_a_summary_is_one_clear_error(tmp_path, tables):
    path = write_toy_root(tmp_path / "toy.root", 3, seed=1)
    with pytest.raises(InputError, match="holds no hin_captum summary"):
        RelevanceSummary.read(path)


def test_summaries_of_different_features_do_not_add(tables):
    model, (table, *_) = tables
    summary = empty(model, table)
    other = RelevanceSummary(dict(summary.histograms), summary.features[::-1], summary.classes, "Hbb", "lrp")
    with pytest.raises(ValueError, match="cannot be added"):
        summary + other
