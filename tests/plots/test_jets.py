"""The figures of an attribution run, checked on what they draw rather than on pixels."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from mpl_toolkits.mplot3d.art3d import Line3DCollection

from hin_captum.data.schema import CMS_HBB, unique_names
from hin_captum.data import RootJetReader, write_toy_root
from hin_captum.methods import METHODS
from hin_captum.pipeline.explain import explain_chunk
from hin_captum.plots import jets as plots
from hin_captum.plots.style import centred_norm, feature_labels, save_figure
from tests.factories import random_hin

COORDINATES = {"eta": "track_etarel", "phi": "track_phirel", "pt": "track_pt"}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = write_toy_root(tmp_path_factory.mktemp("toy") / "toy.root", 8, seed=2)
    chunk = next(RootJetReader(path, step_size=100).chunks(0))
    return explain_chunk(METHODS["lrp"](random_hin(seed=1, hidden=8)), chunk, 4, 1, torch.device("cpu"), CMS_HBB)


def test_centred_norm_is_symmetric_about_zero():
    norm = centred_norm(np.array([-0.5, 2.0, np.nan]))
    assert (norm.vmin, norm.vmax) == (-2.0, 2.0) and norm(0.0) == 0.5
    assert (centred_norm(np.zeros(3)).vmin, centred_norm(np.zeros(3)).vmax) == (-1.0, 1.0)


def test_feature_labels_tell_repeated_features_apart():
    labels = feature_labels()
    assert len(labels) == len(set(labels)) == 48
    assert labels[CMS_HBB.features.index("track_pt")] == "track_pt" and "track_pt_2" in labels


def test_save_figure_writes_each_format_and_no_temporary(tmp_path, table):
    written = save_figure(plots.relevance_heatmap(table, 0, "track_pt"), tmp_path / "plots" / "ranking",
                          ("png", "pdf"))

    assert [path.name for path in written] == ["ranking.png", "ranking.pdf"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(path.name for path in (tmp_path / "plots").iterdir()) == ["ranking.pdf", "ranking.png"]
    with pytest.raises(ValueError, match="svg"):
        save_figure(plots.relevance_heatmap(table, 0, "track_pt"), tmp_path / "x", ("svg",))


def test_most_confident_orders_by_hbb_probability(table):
    chosen = plots.most_confident(table, 3)
    probability = table.prediction[:, 1]
    assert len(chosen) == 3 and list(probability[chosen]) == sorted(probability, reverse=True)[:3]


def test_heatmap_has_features_by_tracks_ordered_by_pt_centred_at_zero(table):
    jet = 2
    figure = plots.relevance_heatmap(table, jet, "track_pt")
    axes, colorbar = figure.axes
    rows = table.track_slice(jet)
    pt = table.x[rows, CMS_HBB.features.index("track_pt")]

    ticks = [float(label.get_text()) for label in axes.get_xticklabels()]
    assert len(ticks) == len(pt) and ticks == sorted(ticks, reverse=True)
    np.testing.assert_allclose(ticks, np.sort(pt)[::-1], rtol=1e-2)
    assert [label.get_text() for label in axes.get_yticklabels()] == unique_names(CMS_HBB.features)
    mesh = axes.collections[0]
    assert mesh.norm.vmin == -mesh.norm.vmax == -np.abs(table.node[rows]).max()
    # The cell of the hardest track and feature 0 holds that track's relevance of feature 0.
    hardest = rows.start + int(np.argmax(pt))
    assert mesh.get_array().reshape(48, len(pt))[0, 0] == pytest.approx(table.node[hardest, 0])
    assert "relevance" in colorbar.get_ylabel() and axes.get_ylabel() == "input feature"


def test_3d_plot_highlights_only_the_significant_track_pair(table):
    jet = 1
    edges = table.edge_slice(jet)
    src, dst = table.edge_src[edges], table.edge_dst[edges]
    score = np.full(len(src), 1.0)
    score[((src == 0) & (dst == 3)) | ((src == 3) & (dst == 0))] = 40.0
    edge_score = table.edge_score.copy()
    edge_score[edges] = score / score.sum()
    n = int(table.tracks_per_jet[jet])

    figure = plots.jet_3d(replace(table, edge_score=edge_score), jet, COORDINATES, edge_significance=2.0)
    axes = figure.axes[0]
    sizes = [c for c in axes.collections if isinstance(c, PathCollection)][0].get_sizes()  # before drawing sorts them
    norms = np.linalg.norm(table.node[table.track_slice(jet)], axis=1)
    assert len(sizes) == n and np.argmax(sizes) == np.argmax(norms) and np.argmin(sizes) == np.argmin(norms)
    figure.canvas.draw()  # 3D collections project their segments when drawn
    faint, coloured = [c for c in axes.collections if isinstance(c, Line3DCollection)]
    assert len(coloured.get_segments()) == 1 and len(faint.get_segments()) == n * (n - 1) // 2 - 1
    colour_bars = sorted(other.get_ylabel() for other in figure.axes[1:])
    assert colour_bars == ["edge score S_edge (both directions)", "track relevance (sum of R over features)"]
    assert axes.get_zlabel() == "log10 track_pt"
    legend = axes.get_legend()  # marker sizes explained
    assert legend.get_title().get_text() == "|R| of the track" and len(legend.get_texts()) == 3
    assert "for the Hbb logit" in axes.get_title()
    for axis in (axes.xaxis, axes.yaxis, axes.zaxis):  # few enough ticks not to overlap
        assert len([tick for tick in axis.get_ticklocs()]) <= 6


def test_3d_plot_without_edge_relevance_draws_no_edges(table):
    figure = plots.jet_3d(replace(table, edge_relevance=None, edge_score=None), 0, COORDINATES, 2.0)
    assert not [c for c in figure.axes[0].collections if isinstance(c, Line3DCollection)]
    assert "no edge relevance" in figure.axes[0].get_title()


def test_plot_jets_writes_both_kinds_per_jet_and_nothing_for_zero(tmp_path, table):
    settings = plots.PlotSettings(jets=2, top_features=2, edge_significance=2.0, coordinates=COORDINATES)
    written = plots.plot_jets(table, tmp_path, settings)

    assert sorted(path.name for path in written) == sorted(
        ["hbb1_heatmap.png", "hbb1_3d.png", "hbb2_heatmap.png", "hbb2_3d.png"])
    assert plots.plot_jets(table, tmp_path / "none", plots.PlotSettings(**{**settings.__dict__, "jets": 0})) == []
    assert not (tmp_path / "none").exists()
