"""The friend tree and the PyTorch copy: one entry per input entry, tracks and edges where the input has them."""
import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from torch_geometric.data import Batch, Data

import hin_captum
from hin_captum.config import CONFIG_DIR, feature_names, load_config, unique_names
from hin_captum.data import read_root, write_toy_root
from hin_captum.errors import InputError
from hin_captum.methods import METHODS
from hin_captum.output import RelevanceTable, explain_jets, write_relevance
from hin_captum.output.files import friend_rows
from tests.data.test_root import write_ntuple
from tests.factories import random_hin

TREE = load_config("definitions")["tree"]
PROJECT = CONFIG_DIR.parent
CPU = torch.device("cpu")
# File a: 5 entries, the third unlabeled; file b: 4 entries, the first with a NaN feature.
COUNTS = {"a": [3, 4, 2, 5, 3], "b": [4, 2, 3, 6]}
KINDS = {"a": ["qcd", "hbb", "none", "hbb", "qcd"], "b": ["hbb", "qcd", "qcd", "hbb"]}


def write_files(folder):
    dz = np.arange(sum(COUNTS["b"]), dtype=np.float32)
    dz[1] = np.nan
    return [write_ntuple(folder / "a.root", COUNTS["a"], KINDS["a"]),
            write_ntuple(folder / "b.root", COUNTS["b"], KINDS["b"], {"track_dz": dz})]


@pytest.fixture(scope="module")
def model():
    return random_hin(seed=5, hidden=8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("ntuples"))


def explained(model, files, method="lrp", max_jets=None):
    jets = read_root(files, max_jets=max_jets)
    table = explain_jets(METHODS[method](model), jets.jets, batch_size=3, target=1, device=CPU)
    return jets, table


def written_tree(tmp_path, model, files, **options):
    jets, table = explained(model, files, **options)
    paths = write_relevance(tmp_path / "out", table, jets.report.entries, jets.report.jets_read,
                            tree="relevance", basket_entries=4, metadata={"note": "test"})
    with uproot.open(paths[0]) as file:
        return file["relevance"].arrays(), paths, table


def test_the_friend_tree_has_an_entry_per_input_entry_over_both_files(tmp_path, model, files):
    arrays, _, _ = written_tree(tmp_path, model, files)

    assert len(arrays) == 9
    assert arrays["file_index"].tolist() == [0] * 5 + [1] * 4
    assert arrays["entry"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert arrays["explained"].tolist() == [True, True, False, True, True, False, True, True, True]
    expected_tracks = [n if ok else 0 for n, ok in zip(COUNTS["a"] + COUNTS["b"], arrays["explained"])]
    assert arrays["rel_n_tracks"].tolist() == expected_tracks
    assert ak.num(arrays["rel_track_quality"]).tolist() == expected_tracks
    assert arrays["rel_n_edges"].tolist() == [n * (n - 1) for n in expected_tracks]
    assert arrays["target"].tolist() == [1, 1, -1, 1, 1, -1, 1, 1, 1]
    per_track = sum(arrays[f"rel_{name}"] for name in unique_names(feature_names()))
    np.testing.assert_allclose(ak.flatten(arrays["rel_sum"]), ak.flatten(per_track), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(arrays["rel_total"], ak.sum(per_track, axis=1), rtol=1e-4, atol=1e-5)


def test_track_and_edge_branches_hold_the_relevance_of_the_jet_at_that_entry(tmp_path, model, files):
    arrays, _, _ = written_tree(tmp_path, model, files)
    with uproot.open(files[1]) as file:
        inputs = file[TREE].arrays(list(dict.fromkeys(feature_names())))

    for entry in (1, 2, 3):  # file b, read here independently of the reader
        x = torch.tensor(np.array([inputs[name][entry].to_list() for name in feature_names()], np.float32).T)
        n = len(x)
        src = torch.arange(n).repeat_interleave(n)
        dst = torch.arange(n).repeat(n)
        keep = src != dst
        graph = Data(x=x, edge_index=torch.stack([src[keep], dst[keep]]))
        reference = hin_captum.attribute(model, graph, method="lrp", target=1)
        row = arrays[5 + entry]
        for column, name in enumerate(unique_names(feature_names())):
            np.testing.assert_allclose(row[f"rel_{name}"].to_numpy(), reference.node[:, column], rtol=1e-4,
                                       atol=1e-6, err_msg=name)
        np.testing.assert_allclose(row["rel_sum"].to_numpy(), reference.node.sum(1), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(row["output"], reference.output.item(), rtol=1e-5)
        np.testing.assert_allclose([row["prob_QCD"], row["prob_Hbb"]], reference.prediction[0], rtol=1e-5)
        # Edges may come in any order: compare by (source, destination).
        written = {(s, d): (r, score) for s, d, r, score in zip(row["edge_src"].tolist(), row["edge_dst"].tolist(),
                                                                row["edge_relevance"].tolist(),
                                                                row["edge_score"].tolist())}
        assert set(written) == {(s, d) for s in range(n) for d in range(n) if s != d}
        expected_relevance = reference.edge.sum(1)
        for e, (s, d) in enumerate(reference.edge_index.t().tolist()):
            np.testing.assert_allclose(written[(s, d)][0], expected_relevance[e], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(written[(s, d)][1], reference.edge_score[e], rtol=1e-4, atol=1e-7)


def test_max_jets_covers_the_entries_up_to_the_last_explained_jet(tmp_path, model, files):
    arrays, _, _ = written_tree(tmp_path, model, files, max_jets=3)

    assert arrays["explained"].tolist() == [True, True, False, True]
    assert arrays["rel_n_tracks"].tolist() == [3, 4, 0, 5]


def test_methods_without_edge_relevance_write_no_edge_branches(tmp_path, model, files):
    arrays, _, _ = written_tree(tmp_path, model, files, method="inputxgradient")

    assert "rel_n_edges" not in arrays.fields and "edge_src" not in arrays.fields
    assert arrays["rel_n_tracks"].tolist()[:2] == [3, 4]


def test_the_pytorch_copy_loads_weights_only_and_matches_the_tree(tmp_path, model, files):
    arrays, paths, table = written_tree(tmp_path, model, files)
    copy = torch.load(paths[1], weights_only=True)

    assert copy["method"] == "lrp" and copy["metadata"] == {"note": "test"}
    assert copy["row"].tolist() == [0, 1, 3, 4, 6, 7, 8]
    rows = copy["row"].numpy()
    np.testing.assert_array_equal(copy["output"].numpy(), arrays["output"][rows])
    node = np.stack([ak.flatten(arrays[f"rel_{name}"]).to_numpy() for name in copy["features"]], axis=1)
    np.testing.assert_array_equal(copy["node"].numpy(), node)
    np.testing.assert_array_equal(copy["track_ptr"].diff().numpy(), arrays["rel_n_tracks"][rows])
    np.testing.assert_array_equal(copy["edge_index"][0].numpy(), ak.flatten(arrays["edge_src"]).to_numpy())
    quality = feature_names().index("track_quality")
    np.testing.assert_array_equal(copy["x"][:, quality].numpy(), table.x[:, quality])


def test_a_failure_while_writing_leaves_neither_file(tmp_path, model, files, monkeypatch):
    jets, table = explained(model, files)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_relevance(tmp_path / "out", table, jets.report.entries, jets.report.jets_read,
                        tree="relevance", basket_entries=4, metadata={})
    assert list((tmp_path / "out").iterdir()) == []


def test_jets_out_of_input_order_are_refused(model, files):
    _, table = explained(model, files)
    table.entry = table.entry[::-1].copy()
    with pytest.raises(ValueError, match="input order"):
        friend_rows(table, [5, 4], 9)


def test_jets_with_dropped_tracks_are_refused(model, files):
    jets = read_root(files, max_tracks=2)
    with pytest.raises(InputError, match="keep all their tracks"):
        explain_jets(METHODS["lrp"](model), jets.jets, batch_size=4, target=1, device=CPU)


def test_concatenated_batches_equal_one_batch(model, files):
    jets = read_root(files)
    whole = explain_jets(METHODS["lrp"](model), jets.jets, batch_size=100, target=1, device=CPU)
    pieces = explain_jets(METHODS["lrp"](model), jets.jets, batch_size=2, target=1, device=CPU)

    assert isinstance(pieces, RelevanceTable) and pieces.num_jets == whole.num_jets == 7
    np.testing.assert_allclose(pieces.node, whole.node, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(pieces.edge_src, whole.edge_src)
    np.testing.assert_array_equal(pieces.entry, whole.entry)


def test_predicted_target_explains_each_jets_argmax(tmp_path):
    model = hin_captum.load_model(PROJECT / "pretrained" / "hin_toy.pt")
    jets = read_root(write_toy_root(tmp_path / "toy.root", 12, seed=4))
    table = explain_jets(METHODS["lrp"](model), jets.jets, batch_size=5, target="predicted", device=CPU)

    batch = Batch.from_data_list(jets.jets)
    logits = model(batch.x, batch.edge_index, batch.batch).detach()
    assert len(set(logits.argmax(1).tolist())) == 2  # both classes occur, so a constant target would fail
    np.testing.assert_array_equal(table.target, logits.argmax(1))
    np.testing.assert_allclose(table.output, logits.max(1).values, rtol=1e-5)
