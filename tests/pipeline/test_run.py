"""The streaming pipeline: one friend file per input file, chunk-size invariance, resume, interruption, the summary."""
import json

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from torch_geometric.data import Data

import hin_captum
from hin_captum.pipeline import worker as pipeline  # the module whose explain_chunk the interruption test replaces
from hin_captum.config import bundled
from hin_captum.data.schema import CMS_HBB, unique_names
from hin_captum.data import read_root
from hin_captum.data.graphs import fully_connected_edge_index
from hin_captum.util import InputError
from hin_captum.output import RelevanceSummary
from hin_captum.output.files import METADATA_KEY, SUMMARY_FOLDER
from hin_captum.pipeline import RunSettings, explain_sample, output_names
from tests.scripts.test_attribute import NON_FINITE, UNLABELED, write_toy

MODEL = bundled("pretrained/hin_toy.pt")
NAMES = unique_names(CMS_HBB.features)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    return [write_toy(folder / "a.root", 11, seed=41, unlabeled=[UNLABELED], non_finite=[NON_FINITE]),
            write_toy(folder / "b.root", 7, seed=42)]


def settings(inputs, out, **options):
    """The run of the attribute config on ``inputs``, in small batches and chunks, with ``options`` on top."""
    return RunSettings.load(model=str(MODEL), data=list(map(str, inputs)), methods=options.pop("methods", {"lrp": {}}),
                            out=out, batch_size=options.pop("batch_size", 3),
                            chunk_size=options.pop("step_size", 4), basket_entries=5, **options)


def friend(path):
    with uproot.open(path) as file:
        return file["relevance"].arrays(), json.loads(str(file[METADATA_KEY]))


def test_every_input_file_gets_a_friend_file_with_exactly_its_entries(tmp_path, inputs):
    runs = explain_sample(settings(inputs, tmp_path))

    assert [f.status.value for f in runs[0].files] == ["written", "written"]
    model = hin_captum.load_model(MODEL)
    for path, expected_entries in zip(inputs, (11, 7)):
        arrays, metadata = friend(tmp_path / "lrp" / f"{path.stem}.root")
        assert len(arrays) == expected_entries and metadata["complete"] and metadata["entries"] == expected_entries
        assert arrays["entry"].tolist() == list(range(expected_entries))
        jets = read_root(path).jets
        explained = np.flatnonzero(arrays["explained"].to_numpy())
        assert len(explained) == len(jets) == expected_entries - 2 * (path.stem == "a")
        for jet, row in zip(jets[:4], explained[:4]):
            one = Data(x=jet.x, edge_index=fully_connected_edge_index(len(jet.x)))
            alone = hin_captum.attribute(model, one, target=1)
            node = np.stack([arrays[row][f"rel_{name}"].to_numpy() for name in NAMES], axis=1)
            np.testing.assert_allclose(node, alone.node.numpy(), rtol=2e-3, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "lrp").iterdir()) == ["a.root", "b.root", "summary.root"]


def test_the_chunk_and_batch_sizes_change_no_number(tmp_path, inputs):
    explain_sample(settings(inputs, tmp_path / "small", step_size=2, batch_size=1))
    explain_sample(settings(inputs, tmp_path / "large", step_size="20 MB", batch_size=64))
    for name in ("a.root", "b.root"):
        small, _ = friend(tmp_path / "small" / "lrp" / name)
        large, _ = friend(tmp_path / "large" / "lrp" / name)
        assert small.fields == large.fields
        for field in small.fields:
            np.testing.assert_allclose(ak.to_numpy(ak.flatten(small[field], axis=None)),
                                       ak.to_numpy(ak.flatten(large[field], axis=None)), rtol=1e-4, atol=1e-6)
    small = RelevanceSummary.read(tmp_path / "small" / "lrp" / "summary.root")
    large = RelevanceSummary.read(tmp_path / "large" / "lrp" / "summary.root")
    for name, histogram in small.histograms.items():
        np.testing.assert_allclose(histogram.values(), large.histograms[name].values(), rtol=1e-4, atol=1e-5)


def test_a_rerun_skips_complete_files_and_overwrite_redoes_them(tmp_path, inputs):
    first = explain_sample(settings(inputs, tmp_path))[0]
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "lrp").iterdir()}

    again = explain_sample(settings(inputs, tmp_path))[0]

    assert [f.status.value for f in again.files] == ["skipped", "skipped"]
    assert {name: stamp for name, stamp in stamps.items() if name != "summary.root"} == {
        p.name: p.stat().st_mtime_ns for p in (tmp_path / "lrp").iterdir() if p.name != "summary.root"}
    assert again.read.jets_kept == first.read.jets_kept and again.read.dropped == first.read.dropped
    for name, histogram in first.summary.histograms.items():
        np.testing.assert_array_equal(histogram.values(), again.summary.histograms[name].values())
    redone = explain_sample(settings(inputs, tmp_path, overwrite=True))[0]
    assert [f.status.value for f in redone.files] == ["written", "written"]


def test_a_friend_file_of_another_run_is_refused_before_any_work(tmp_path, inputs):
    explain_sample(settings(inputs, tmp_path))
    with pytest.raises(InputError, match="exists but was not made by this command.*--overwrite"):
        explain_sample(settings(inputs, tmp_path, methods={"lrp": {"epsilon": 0.5}}))


def test_an_interrupted_run_leaves_complete_files_only_and_no_empty_folder(tmp_path, inputs, monkeypatch):
    calls = {"n": 0}
    explain = pipeline.explain_chunk

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # in the second file (the first has 3 chunks of 4 entries)
            raise KeyboardInterrupt
        return explain(*args, **kwargs)

    monkeypatch.setattr(pipeline, "explain_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        explain_sample(settings(inputs, tmp_path))
    assert sorted(p.name for p in (tmp_path / "lrp").iterdir()) == ["a.root"]

    calls["n"] = -100
    with pytest.raises(KeyboardInterrupt):
        calls["n"] = 4  # the first chunk of the first file
        explain_sample(settings(inputs, tmp_path / "fresh"))
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").rglob("*"))

    monkeypatch.setattr(pipeline, "explain_chunk", explain)
    resumed = explain_sample(settings(inputs, tmp_path))[0]
    assert [f.status.value for f in resumed.files] == ["skipped", "written"]


def test_max_jets_leaves_a_partial_file_and_no_later_ones(tmp_path, inputs):
    run = explain_sample(settings(inputs, tmp_path, max_jets=5))[0]

    assert [(f.status.value, f.jets) for f in run.files] == [("partial", 5)]
    arrays, metadata = friend(tmp_path / "lrp" / "a.root")
    assert int(np.sum(arrays["explained"])) == 5 and not metadata["complete"]
    assert run.summary.jets == 5 and sorted(p.name for p in (tmp_path / "lrp").iterdir()) == ["a.root", "summary.root"]


def test_the_summary_adds_up_to_the_friend_trees(tmp_path, inputs):
    run = explain_sample(settings(inputs, tmp_path, methods={"lrp": {}, "inputxgradient": {}}))[0]
    summary = RelevanceSummary.read(tmp_path / "lrp" / "summary.root")

    totals, magnitudes, jets = np.zeros(len(NAMES)), np.zeros(len(NAMES)), 0
    for name in ("a.root", "b.root"):
        arrays, _ = friend(tmp_path / "lrp" / name)
        for k, feature in enumerate(NAMES):
            per_jet = np.array([np.sum(values) for values in arrays[f"rel_{feature}"].to_list()])
            totals[k] += per_jet.sum()
            magnitudes[k] += np.array([np.abs(values).sum() for values in arrays[f"rel_{feature}"].to_list()]).sum()
        jets += int(np.sum(arrays["explained"]))
    assert summary.jets == jets == run.read.jets_kept == int(summary.histograms["jets"].values().sum())
    np.testing.assert_allclose(summary.histograms["feature_signed"].values().sum((1, 2)), totals, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(summary.histograms["feature_abs"].values().sum((1, 2)), magnitudes, rtol=1e-4)
    assert (summary.histograms["feature_top"].values().sum((0)) == 3 * summary.histograms["jets"].values()).all()
    tracks = sum(int(np.sum(friend(tmp_path / "lrp" / name)[0]["rel_n_explained"])) for name in ("a.root", "b.root"))
    assert summary.histograms["rank_tracks"].values(flow=True).sum() == tracks
    per_file = [RelevanceSummary.read(tmp_path / "lrp" / name, SUMMARY_FOLDER) for name in ("a.root",
                                                                                                      "b.root")]
    added = per_file[0] + per_file[1]
    for name, histogram in summary.histograms.items():
        np.testing.assert_allclose(histogram.values(), added.histograms[name].values(), rtol=1e-6, atol=1e-9)


def test_a_torch_copy_per_file_on_request(tmp_path, inputs):
    explain_sample(settings(inputs, tmp_path, torch_copy=True))
    copy = torch.load(tmp_path / "lrp" / "b.pt", weights_only=True)
    arrays, _ = friend(tmp_path / "lrp" / "b.root")
    np.testing.assert_array_equal(copy["output"].numpy(), arrays["output"].to_numpy())
    assert copy["node"].shape == (int(np.sum(arrays["rel_n_tracks"])), len(NAMES))


def test_input_files_with_the_same_name_get_distinct_friend_files(tmp_path):
    assert output_names([tmp_path / "x" / "jets.root", tmp_path / "y" / "jets.root", tmp_path / "z.root"]) == [
        "jets_0.root", "jets_1.root", "z.root"]
