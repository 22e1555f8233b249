"""The summary's figures: drawn from the histograms alone, titled with the explained target."""
import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt

from hin_captum.data import RootJetReader, write_toy_root
from hin_captum.methods import METHODS
from hin_captum.output import RelevanceSummary
from hin_captum.data.schema import CMS_HBB
from hin_captum.pipeline.explain import explain_chunk
from hin_captum.models.tagger import as_tagger
from hin_captum.output.summary import value_ranges
from hin_captum.plots import summary as plots
from tests.factories import random_hin


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    model = random_hin(seed=4, hidden=8)
    path = write_toy_root(tmp_path_factory.mktemp("toy") / "toy.root", 24, seed=6)
    result = None
    for chunk in RootJetReader(path, step_size=10).chunks(0):
        table = explain_chunk(METHODS["lrp"](model), chunk, 8, "predicted", torch.device("cpu"), CMS_HBB)
        if result is None:
            result = RelevanceSummary.empty(table.features, table.classes, "predicted", "lrp",
                                            value_ranges(*as_tagger(model).input_statistics(len(table.features)), table.features))
        result.add(table, {"eta": "track_etarel", "phi": "track_phirel", "pt": "track_pt"})
    return result


def test_the_ranking_orders_features_by_mean_abs_relevance_with_a_centred_signed_panel(summary):
    figure = plots.feature_ranking(summary)
    signed, magnitude, top = figure.axes[:3]  # then the three colour bars
    labels = [label.get_text() for label in signed.get_yticklabels()]
    order = np.argsort(-summary.histograms["feature_abs"].values().sum((1, 2)), kind="stable")
    assert labels == [summary.features[k] for k in order]
    image = signed.images[0]
    assert image.norm.vmin == -image.norm.vmax
    assert "each jet's predicted class" in figure._suptitle.get_text()
    assert [t.get_text() for t in top.get_xticklabels()] == ["true QCD", "true Hbb", "predicted QCD", "predicted Hbb"]
    plt.close(figure)


def test_discrete_features_get_boxes_per_value_and_continuous_ones_a_2d_histogram(summary):
    summary.histograms["feature_abs"].view().value[:] = 0.0  # make track_charge and track_pt the top two
    for name, weight in (("track_charge", 2.0), ("track_pt", 1.0)):
        summary.histograms["feature_abs"].view().value[summary.features.index(name)] = weight
    figure = plots.relevance_vs_value(summary, n_features=2)
    charge, pt = [axes for axes in figure.axes if axes.get_xlabel().endswith("(input value)")]
    assert charge.get_xlabel().startswith("track_charge") and charge.patches or charge.lines
    assert len(pt.collections) == 1  # the 2D histogram
    plt.close(figure)


def test_every_figure_is_written_from_a_summary_read_back(tmp_path, summary):
    summary.write(tmp_path / "summary.root")
    written = plots.plot_summary(RelevanceSummary.read(tmp_path / "summary.root"), tmp_path / "figures")
    assert sorted(path.name for path in written) == sorted(
        f"{name}.png" for name in ("feature_ranking", "relevance_by_pt_rank", "edge_relevance_by_delta_r",
                                   "relevance_by_mass", "relevance_by_pt", "relevance_vs_value"))
    assert all(path.stat().st_size > 10_000 for path in written)
