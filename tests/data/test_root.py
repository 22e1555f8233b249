"""Reading H->bb ntuples into jet graphs."""
from importlib import resources

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from torch_geometric.data import Batch

from hin_captum.config import load_config
from hin_captum.data.schema import CMS_HBB
from hin_captum.data import RootJetReader, make_toy_jets, read_root, write_toy_root
from hin_captum.data.root import track_matrix
from hin_captum.util import InputError

TREE = CMS_HBB.tree
FEATURES = CMS_HBB.features
BRANCH_NUMBER = {name: number for number, name in enumerate(dict.fromkeys(FEATURES))}
LABEL_BRANCHES = [name for names in CMS_HBB.labels.values() for name in names]
LABELS = {
    "qcd": {"sample_isQCD": 1, "label_QCD_others": 1},
    "qcd_b": {"sample_isQCD": 1, "label_QCD_b": 1},
    "hbb": {"label_H_bb": 1},
    "none": {},
    "flavour_only": {"label_QCD_bb": 1},  # not from the QCD sample: no label
    "sample_only": {"sample_isQCD": 1},
    "both": {"sample_isQCD": 1, "label_QCD_c": 1, "label_H_bb": 1},
}


def write_ntuple(path, counts, kinds, columns=None, omit=(), tree=TREE):
    """Write jets by hand with uproot. Unless ``columns`` says otherwise, track branch
    number b of the t-th track of the file holds ``100 * b + t``."""
    counts = np.asarray(counts)
    track = np.arange(counts.sum())
    values = {name: (100.0 * number + track).astype(np.float32) for name, number in BRANCH_NUMBER.items()}
    values.update(columns or {})
    data = {
        "tracks": ak.unflatten(ak.zip({k: v for k, v in values.items() if k not in omit}), counts),
        **{name: np.array([LABELS[kind].get(name, 0) for kind in kinds], np.int32) for name in LABEL_BRANCHES},
        "fj_pt": np.linspace(300, 900, len(counts), dtype=np.float32),
        "fj_sdmass": np.linspace(20, 200, len(counts), dtype=np.float32),
    }
    with uproot.recreate(path) as file:
        file.mktree(
            tree,
            {name: value for name, value in data.items() if name not in omit},
            counter_name=lambda _: "n_tracks",
            field_name=lambda _, inner: inner,
        )
    return path


def tagged_tracks(jet) -> np.ndarray:
    """The file-wide track numbers ``t`` of a jet's rows, from the tags ``100 * b + t`` of track_quality."""
    return (jet.x[:, FEATURES.index("track_quality")] - 100 * BRANCH_NUMBER["track_quality"]).long().numpy()


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    return write_toy_root(folder / "a.root", 600, seed=21), write_toy_root(folder / "b.root", 250, seed=22)


# --- round trip --------------------------------------------------------------------------


def test_toy_file_reads_back_exactly(toy):
    path = toy[0]
    jets = read_root(path)
    with uproot.open(path) as file:
        arrays = file[TREE].arrays()
    generated = make_toy_jets(600, seed=21)

    assert len(jets) == 600 and jets.report.jets_read == 600 and not jets.report.dropped
    assert [jet.entry.item() for jet in jets] == list(range(600))
    assert {jet.file_index.item() for jet in jets} == {0}
    np.testing.assert_array_equal([jet.num_nodes for jet in jets], arrays["n_tracks"])
    np.testing.assert_array_equal([jet.num_nodes for jet in jets], ak.num(generated.tracks))
    np.testing.assert_array_equal([jet.y.item() for jet in jets], arrays["label_H_bb"])
    for name in CMS_HBB.spectators:
        np.testing.assert_array_equal(np.concatenate([jet[name].numpy() for jet in jets]), arrays[name])
    x = torch.cat([jet.x for jet in jets]).numpy()
    for column, name in enumerate(FEATURES):
        np.testing.assert_array_equal(x[:, column], ak.flatten(arrays[name]), err_msg=name)
        np.testing.assert_array_equal(x[:, column], ak.flatten(generated.tracks[name]), err_msg=name)


def test_jets_match_plain_uproot_jet_by_jet(toy):
    jets = read_root(toy[0], max_jets=25)
    with uproot.open(toy[0]) as file:
        arrays = file[TREE].arrays(list(BRANCH_NUMBER), entry_stop=25)

    for jet, entry in zip(jets, range(25), strict=True):
        expected = np.array([arrays[name][entry].to_list() for name in FEATURES]).T
        np.testing.assert_array_equal(jet.x.numpy(), expected)
        assert jet.track_index.tolist() == list(range(len(expected)))
        assert jet.edge_index.shape == (2, len(expected) * (len(expected) - 1))


def test_graph_attributes_have_documented_types(toy):
    jet = read_root(toy[0], max_jets=1)[0]

    assert jet.x.dtype == torch.float32 and jet.x.shape[1] == 48
    for name, dtype in [("y", torch.long), ("fj_pt", torch.float32), ("fj_sdmass", torch.float32),
                        ("entry", torch.long), ("file_index", torch.long)]:
        assert jet[name].dtype == dtype and jet[name].shape == (1,), name
    assert jet.track_index.dtype == torch.long and jet.track_index.shape == (jet.num_nodes,)


def test_columns_follow_feature_order_with_repeats(tmp_path):
    path = write_ntuple(tmp_path / "tagged.root", [3, 4], ["qcd", "hbb"])

    x = torch.cat([jet.x for jet in read_root(path)]).numpy()

    track = np.arange(7)
    for column, name in enumerate(FEATURES):
        np.testing.assert_array_equal(x[:, column], 100 * BRANCH_NUMBER[name] + track, err_msg=name)
    for repeated in ["track_pt", "track_ptrel", "track_dlambdadz"]:
        assert FEATURES.count(repeated) == 2
        first, second = (i for i, name in enumerate(FEATURES) if name == repeated)
        np.testing.assert_array_equal(x[:, first], x[:, second])


# --- labels and drops --------------------------------------------------------------------


def test_drops_are_counted_by_reason_and_never_come_out(tmp_path):
    # A jet failing several checks counts under the first: labels, then track count, then finiteness.
    kinds = ["qcd", "hbb", "none", "flavour_only", "sample_only", "both", "hbb", "qcd", "qcd_b", "hbb", "hbb", "none",
             "qcd"]
    counts = [3, 2, 4, 3, 2, 5, 1, 0, 3, 4, 6, 1, 1]
    starts = np.cumsum(counts) - counts
    track_dz = 100.0 * BRANCH_NUMBER["track_dz"] + np.arange(sum(counts), dtype=np.float32)
    track_dz[[starts[8] + 1, starts[11], starts[12]]] = np.nan
    trackbtag_ptrel = 100.0 * BRANCH_NUMBER["trackBTag_PtRel"] + np.arange(sum(counts), dtype=np.float32)
    trackbtag_ptrel[starts[9]] = -np.inf
    path = write_ntuple(
        tmp_path / "drops.root", counts, kinds, {"track_dz": track_dz, "trackBTag_PtRel": trackbtag_ptrel}
    )

    jets = read_root(path)

    assert [jet.entry.item() for jet in jets] == [0, 1, 10]
    assert [jet.y.item() for jet in jets] == [0, 1, 1]
    assert all(torch.isfinite(jet.x).all() for jet in jets)
    report = jets.report
    assert (report.jets_read, report.jets_kept) == (13, 3)
    assert report.dropped == {
        "unlabeled": 4, "ambiguous label": 1, "fewer than 2 tracks": 3, "non-finite features": 2
    }
    summary = report.summary()
    assert summary.startswith("kept 3 of 13 jets; dropped: 4 unlabeled, 3 fewer than 2 tracks, ")
    for part in ["1 ambiguous label", "2 non-finite features"]:
        assert part in summary


def test_summary_without_drops():
    from hin_captum.data import ReadReport

    assert ReadReport(jets_read=5, jets_kept=5).summary() == "kept 5 of 5 jets"


def test_no_usable_jet_is_an_input_error(tmp_path):
    path = write_ntuple(tmp_path / "useless.root", [3, 1], ["none", "hbb"])
    with pytest.raises(InputError, match=r"no usable jets in .*useless.root: kept 0 of 2 jets; dropped: ") as error:
        read_root(path)
    assert "\n" not in str(error.value)


def test_max_jets_stops_after_that_many_kept_jets(tmp_path):
    path = write_ntuple(tmp_path / "few.root", [2, 3, 2, 2, 4], ["qcd", "none", "hbb", "qcd", "hbb"])

    jets = read_root(path, max_jets=2)

    assert [jet.entry.item() for jet in jets] == [0, 2]
    assert (jets.report.jets_read, jets.report.jets_kept, jets.report.dropped["unlabeled"]) == (3, 2, 1)


# --- track cap ---------------------------------------------------------------------------


@pytest.mark.parametrize("sort_feature", ["track_pt", "trackBTag_Sip2dSig"])
def test_track_cap_keeps_the_largest_in_input_order(tmp_path, sort_feature):
    per_jet = [[5, 1, 9, 3, 7], [2, 2, 2, 1], [4, 8], [1, 2, 3, 4, 5, 6]]
    expected = [[0, 2, 4], [0, 1, 2], [0, 1], [3, 4, 5]]  # ties go to the earlier track
    counts = [len(values) for values in per_jet]
    column = {sort_feature: np.concatenate(per_jet).astype(np.float32)}
    path = write_ntuple(tmp_path / "cap.root", counts, ["qcd", "hbb", "qcd", "hbb"], column)

    jets = read_root(path, max_tracks=3, track_sort_feature=sort_feature)

    starts = np.cumsum(counts) - counts
    for jet, keep, start in zip(jets, expected, starts, strict=True):
        assert jet.track_index.tolist() == keep
        assert tagged_tracks(jet).tolist() == [start + k for k in keep]  # the rows are those tracks
        assert jet.edge_index.shape == (2, len(keep) * (len(keep) - 1))


@pytest.mark.parametrize(
    "options, message",
    [({"max_tracks": 1}, "max_tracks"), ({"track_sort_feature": "track_energy"}, "track_sort_feature"),
     ({"step_size": "20 parsecs"}, "step_size"), ({"step_size": 0}, "step_size")],
)
def test_bad_reader_options_are_input_errors(toy, options, message):
    with pytest.raises(InputError, match=message):
        RootJetReader(toy[0], **options)


# --- chunks and files --------------------------------------------------------------------


def jet_records(jets):
    return [
        (jet.file_index.item(), jet.entry.item(), jet.y.item(), jet.x.numpy().tobytes(),
         jet.track_index.tolist(), jet.fj_pt.item(), jet.fj_sdmass.item())
        for jet in jets
    ]


@pytest.mark.parametrize("step_size", [37, "400 kB"])
def test_small_chunks_over_two_files_give_the_one_chunk_result(toy, step_size):
    one_chunk = read_root(list(toy), step_size=10_000, max_tracks=12)
    reader = RootJetReader(list(toy), step_size=step_size, max_tracks=12)

    chunked = list(reader)

    assert jet_records(chunked) == jet_records(one_chunk)
    assert [(jet.file_index.item(), jet.entry.item()) for jet in chunked] == [
        *((0, entry) for entry in range(600)), *((1, entry) for entry in range(250))
    ]
    assert reader.report.files == [str(path) for path in toy] == [str(path) for path in reader.files]


def test_chunking_really_happens(toy):
    with uproot.open(toy[0]) as file:
        assert file[TREE].num_entries_for("400 kB") < 600 / 3


def test_glob_patterns_expand_in_sorted_order(toy):
    reader = RootJetReader(str(toy[0].parent / "*.root"))
    assert reader.files == list(toy)


def test_iterating_again_starts_a_fresh_report(toy):
    reader = RootJetReader(toy[1])
    assert len(list(reader)) == len(list(reader)) == reader.report.jets_kept == 250


def test_batches_keep_file_and_track_indices(toy):
    jets = read_root(list(toy), max_tracks=5).jets
    pair = [jets[0], jets[-1]]

    batch = Batch.from_data_list(pair)

    assert batch.file_index.tolist() == [0, 1]
    assert batch.track_index.tolist() == pair[0].track_index.tolist() + pair[1].track_index.tolist()


# --- std::vector<float> ------------------------------------------------------------------


def skhep_file(name):
    """A ROOT file shipped inside the scikit-hep-testdata wheel (0.3.x ships them; later versions download)."""
    try:
        path = resources.files("skhep_testdata") / "data" / name
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        pytest.skip(f"needs {name} from the scikit-hep-testdata==0.3.12 wheel")
    return path


def test_std_vector_float_and_counted_float_arrays_convert_alike():
    # Its tree has the same jagged content as std::vector<float> (StlVecF32) and as float[N] (SliceF32).
    path = skhep_file("uproot-small-evnt-tree-fullsplit.root")
    with uproot.open(path) as file:
        tree = file["tree"]
        assert tree["StlVecF32"].typename == "std::vector<float>"
        assert tree["SliceF32"].typename == "float[]"
        arrays = tree.arrays(["StlVecF32", "SliceF32"])
    lists = arrays["StlVecF32"].to_list()

    values, counts = track_matrix(arrays, ["StlVecF32", "SliceF32"])

    assert counts.tolist() == [len(entry) for entry in lists] and 0 in counts
    np.testing.assert_array_equal(values[:, 0], [value for entry in lists for value in entry])
    np.testing.assert_array_equal(values[:, 1], values[:, 0])
    assert values.dtype == np.float32


def test_tracks_branches_of_unequal_lengths_are_an_input_error():
    chunk = ak.Array({"a": [[1.0, 2.0], [3.0]], "b": [[1.0], [3.0]]})
    with pytest.raises(InputError, match="disagree on the number of tracks"):
        track_matrix(chunk, ["a", "b"])


def test_a_per_jet_branch_where_tracks_belong_is_an_input_error():
    chunk = ak.Array({"a": [[1.0, 2.0], [3.0]], "b": [1.0, 3.0]})
    with pytest.raises(InputError, match="'b' holds float64, not one number per track"):
        track_matrix(chunk, ["a", "b"])


# --- bad input ---------------------------------------------------------------------------


def assert_one_line_error(paths, pattern, **options):
    with pytest.raises(InputError, match=pattern) as error:
        read_root(paths, **options)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_missing_file(tmp_path):
    assert_one_line_error(tmp_path / "absent.root", r"^no such file: .*absent\.root$")


@pytest.mark.parametrize("text", ["not ROOT\n", "this is a text file, not a ROOT file\n" * 50])
def test_text_file_is_not_root(tmp_path, text):
    path = tmp_path / "notes.root"
    path.write_text(text)
    assert_one_line_error(path, r"notes\.root is not a ROOT file")


def test_missing_tree_names_the_trees_that_exist(toy):
    message = assert_one_line_error(toy[0], r"no tree 'Events'", tree="Events")
    assert TREE in message and "tree name" in message


def test_missing_branches_are_listed(tmp_path):
    path = write_ntuple(tmp_path / "partial.root", [2, 3], ["qcd", "hbb"], omit=("track_dz", "fj_pt"))
    message = assert_one_line_error(path, "lacks branches")
    assert "track_dz" in message and "fj_pt" in message and "track_dxy," not in message


def test_glob_matching_nothing(tmp_path):
    assert_one_line_error(str(tmp_path / "nothing*.root"), "no files match")


def test_empty_file_list():
    assert_one_line_error([], "no input files")


def test_directory_is_not_a_file(tmp_path):
    assert_one_line_error(tmp_path, "is not a file")


def test_a_bad_file_after_a_good_one_fails_before_reading(toy, tmp_path):
    (tmp_path / "bad.root").write_text("nope")
    with pytest.raises(InputError, match="bad.root is not a ROOT file"):
        RootJetReader([toy[0], tmp_path / "bad.root"])


def write_rntuple(path, jets: ak.Array, tree=TREE):
    """Jets of ``make_toy_jets`` as an RNTuple in the ntuple schema (what uproot 5.6+ writes by default)."""
    fields = {name: jets["tracks"][name] for name in jets["tracks"].fields}
    fields.update({name: jets[name] for name in jets.fields if name != "tracks"})
    with uproot.recreate(path) as file:
        file.mkrntuple(tree, fields)
    return path


def test_an_rntuple_reads_like_the_ttree_of_the_same_jets(tmp_path):
    jets = make_toy_jets(23, seed=8)
    tree_file = write_toy_root(tmp_path / "tree.root", 23, seed=8)
    rntuple_file = write_rntuple(tmp_path / "rntuple.root", jets)
    with uproot.open(rntuple_file) as file:
        assert file.classnames()[f"{TREE};1"] == "ROOT::RNTuple"

    from_tree, from_rntuple = read_root(tree_file), read_root(rntuple_file, step_size=7)

    assert len(from_rntuple) == len(from_tree) > 15
    for a, b in zip(from_tree, from_rntuple):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.entry, b.entry)
        assert torch.equal(a.fj_sdmass, b.fj_sdmass)
    assert from_rntuple.report.summary() == from_tree.report.summary()
