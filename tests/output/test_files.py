"""Friend trees written chunk by chunk: one entry per input entry, tracks and edges where the input has them."""
import json

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from torch_geometric.data import Batch, Data

import hin_captum
from hin_captum.config import bundled, load_config
from hin_captum.data.schema import CMS_HBB, unique_names
from hin_captum.data import RootJetReader, write_toy_root
from hin_captum.data.graphs import fully_connected_edge_index
from hin_captum.util import InputError
from hin_captum.methods import METHODS
from hin_captum.output import FriendFile, RelevanceTable, friend_arrays, read_metadata
from hin_captum.pipeline.explain import explain_chunk
from hin_captum.output.files import torch_copy
from tests.data.test_root import write_ntuple
from tests.factories import random_hin

TREE = CMS_HBB.tree
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


def written(tmp_path, model, path, method="lrp", step_size=2):
    """The friend tree of one input file, written chunk by chunk (chunks of two entries)."""
    reader = RootJetReader(path, step_size=step_size)
    out = tmp_path / f"{path.stem}.root"
    explainer = METHODS[method](model)
    writer = FriendFile(out, "relevance", basket_entries=3)
    for chunk in reader.chunks(0):
        table = explain_chunk(explainer, chunk, 2, 1, CPU, CMS_HBB)
        writer.extend(friend_arrays(RelevanceTable.empty(method, CMS_HBB) if table is None else table, chunk))
    assert not out.exists()  # only once it is complete
    writer.finish(None, {"note": "test"})
    with uproot.open(out) as file:
        return file["relevance"].arrays(), out


def test_the_friend_tree_has_an_entry_per_input_entry(tmp_path, model, files):
    arrays, path = written(tmp_path, model, files[0])

    assert len(arrays) == 5
    assert arrays["entry"].tolist() == [0, 1, 2, 3, 4]
    assert arrays["explained"].tolist() == [True, True, False, True, True]
    explained_tracks = [n if ok else 0 for n, ok in zip(COUNTS["a"], arrays["explained"])]
    assert arrays["rel_n_tracks"].tolist() == list(COUNTS["a"])  # every input track has its place, skipped or not
    assert ak.num(arrays["rel_track_quality"]).tolist() == list(COUNTS["a"])
    assert arrays["rel_n_explained"].tolist() == explained_tracks
    assert ak.all(arrays["rel_sum"][~arrays["explained"]] == 0)
    assert arrays["rel_n_edges"].tolist() == [n * (n - 1) for n in explained_tracks]
    assert arrays["target"].tolist() == [1, 1, -1, 1, 1]
    per_track = sum(arrays[f"rel_{name}"] for name in unique_names(CMS_HBB.features))
    np.testing.assert_allclose(ak.flatten(arrays["rel_sum"]), ak.flatten(per_track), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(arrays["rel_total"], ak.sum(per_track, axis=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(arrays["rel_absorbed"], arrays["output"] - arrays["rel_total"], atol=1e-5)
    assert read_metadata(path) == {"note": "test", "entries": 5}


def test_track_and_edge_branches_hold_the_relevance_of_the_jet_at_that_entry(tmp_path, model, files):
    arrays, _ = written(tmp_path, model, files[1])
    with uproot.open(files[1]) as file:
        inputs = file[TREE].arrays(list(dict.fromkeys(CMS_HBB.features)))

    assert arrays["explained"].tolist() == [False, True, True, True]  # the first has a NaN feature
    for entry in (1, 2, 3):  # read here independently of the reader
        x = torch.tensor(np.array([inputs[name][entry].to_list() for name in CMS_HBB.features], np.float32).T)
        n = len(x)
        graph = Data(x=x, edge_index=fully_connected_edge_index(n))
        reference = hin_captum.attribute(model, graph, method="lrp", target=1)
        row = arrays[entry]
        for column, name in enumerate(unique_names(CMS_HBB.features)):
            np.testing.assert_allclose(row[f"rel_{name}"].to_numpy(), reference.node[:, column], rtol=1e-4,
                                       atol=1e-6, err_msg=name)
        np.testing.assert_allclose(row["output"], reference.output.item(), rtol=1e-5)
        # probabilities can be ~1e-17: compared absolutely (the logit above carries the relative check)
        np.testing.assert_allclose([row["prob_QCD"], row["prob_Hbb"]], reference.prediction[0], rtol=0, atol=1e-6)
        written_edges = {(s, d): (r, score) for s, d, r, score in zip(
            row["edge_src"].tolist(), row["edge_dst"].tolist(), row["edge_relevance"].tolist(),
            row["edge_score"].tolist())}
        assert set(written_edges) == {(s, d) for s in range(n) for d in range(n) if s != d}
        expected_relevance = reference.edge.sum(1)
        for e, (s, d) in enumerate(reference.edge_index.t().tolist()):
            np.testing.assert_allclose(written_edges[(s, d)][0], expected_relevance[e], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(written_edges[(s, d)][1], reference.edge_score[e], rtol=1e-4, atol=1e-7)


def test_methods_without_edge_relevance_write_no_edge_branches(tmp_path, model, files):
    arrays, _ = written(tmp_path, model, files[0], method="inputxgradient")

    assert "rel_n_edges" not in arrays.fields and "edge_src" not in arrays.fields
    assert "rel_absorbed" not in arrays.fields
    assert arrays["rel_n_tracks"].tolist()[:2] == [3, 4]


def test_the_pytorch_copy_loads_weights_only_and_matches_the_tree(tmp_path, model, files):
    arrays, _ = written(tmp_path, model, files[0])
    reader = RootJetReader(files[0])
    table = RelevanceTable.concatenate([explain_chunk(METHODS["lrp"](model), chunk, 4, 1, CPU, CMS_HBB)
                                        for chunk in reader.chunks(0)])
    path = tmp_path / "copy.pt"
    torch.save(torch_copy(table, {"note": "test"}), path)
    copy = torch.load(path, weights_only=True)

    assert copy["method"] == "lrp" and copy["metadata"] == {"note": "test"}
    assert copy["entry"].tolist() == [0, 1, 3, 4]
    rows = copy["entry"].numpy()
    np.testing.assert_allclose(copy["output"].numpy(), arrays["output"][rows], rtol=1e-5)
    node = np.stack([ak.flatten(arrays[f"rel_{name}"][rows]).to_numpy() for name in copy["features"]], axis=1)
    np.testing.assert_allclose(copy["node"].numpy(), node, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(copy["track_ptr"].diff().numpy(), arrays["rel_n_explained"][rows])


def test_jets_with_dropped_tracks_are_refused(model, files):
    chunk = next(RootJetReader(files[0], max_tracks=2).chunks(0))
    with pytest.raises(InputError, match="keep all their tracks"):
        explain_chunk(METHODS["lrp"](model), chunk, 4, 1, CPU, CMS_HBB)


def test_batches_of_a_chunk_equal_one_batch_and_the_data_list_route(model, files):
    chunk = next(RootJetReader(files[0], step_size=100).chunks(0))
    whole = explain_chunk(METHODS["lrp"](model), chunk, 100, 1, CPU, CMS_HBB)
    pieces = explain_chunk(METHODS["lrp"](model), chunk, 1, 1, CPU, CMS_HBB)

    assert pieces.num_jets == whole.num_jets == 4
    np.testing.assert_allclose(pieces.node, whole.node, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(pieces.edge_src, whole.edge_src)
    np.testing.assert_array_equal(pieces.entry, [0, 1, 3, 4])
    graphs = Batch.from_data_list(list(chunk.graphs()))
    listed = hin_captum.attribute(model, graphs, target=1)
    np.testing.assert_allclose(whole.node, listed.node.numpy(), rtol=1e-4, atol=1e-6)


def test_predicted_target_explains_each_jets_argmax(tmp_path):
    model = hin_captum.load_model(bundled("pretrained/hin_toy.pt"))
    chunk = next(RootJetReader(write_toy_root(tmp_path / "toy.root", 12, seed=4), step_size=100).chunks(0))
    table = explain_chunk(METHODS["lrp"](model), chunk, 5, "predicted", CPU, CMS_HBB)

    batch = Batch.from_data_list(list(chunk.graphs()))
    logits = model(batch.x, batch.edge_index, batch.batch).detach()
    assert len(set(logits.argmax(1).tolist())) == 2  # both classes occur, so a constant target would fail
    np.testing.assert_array_equal(table.target, logits.argmax(1))
    np.testing.assert_allclose(table.output, logits.max(1).values, rtol=1e-5)


def test_a_table_selects_jets_with_their_tracks_and_edges(model, files):
    chunk = next(RootJetReader(files[0], step_size=100).chunks(0))
    table = explain_chunk(METHODS["lrp"](model), chunk, 100, 1, CPU, CMS_HBB)

    picked = table.select([2, 0])

    assert picked.num_jets == 2 and picked.tracks_per_jet.tolist() == [5, 3]
    np.testing.assert_array_equal(picked.node[:5], table.node[table.track_slice(2)])
    np.testing.assert_array_equal(picked.edge_relevance[20:], table.edge_relevance[table.edge_slice(0)])
    assert table.select([]).num_jets == 0 and json.dumps(table.select([]).entry.tolist()) == "[]"
