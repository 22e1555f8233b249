"""Toy ROOT files in the schema of the CMS H->bb ntuples, and the script that writes them."""
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hin_captum.config import load_config
from hin_captum.data.schema import CMS_HBB
from hin_captum.data import make_toy_jets, write_toy_root
from hin_captum.util import InputError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_toy_data.py"
DEFINITIONS = load_config("definitions")
TRACK_BRANCHES = list(dict.fromkeys(CMS_HBB.features))
LABELS = CMS_HBB.labels


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    return write_toy_root(tmp_path_factory.mktemp("toy") / "toy.root", 3000, seed=5, signal_fraction=0.4)


@pytest.fixture(scope="module")
def toy_tree(toy_file):
    with uproot.open(toy_file) as file:
        tree = file[DEFINITIONS["tree"]]
        yield tree, tree.arrays()


def test_schema_has_every_branch_once_with_one_counter(toy_tree):
    tree, _ = toy_tree
    labels = [name for names in LABELS.values() for name in names]

    assert sorted(tree.keys()) == sorted([DEFINITIONS["track_counter"], *TRACK_BRANCHES, *labels, *CMS_HBB.spectators])
    assert len(TRACK_BRANCHES) == 45
    for name in TRACK_BRANCHES:
        assert tree[name].typename == "float[]"
        assert tree[name].count_branch.name == DEFINITIONS["track_counter"]
    for name in [*labels, *CMS_HBB.spectators]:
        assert tree[name].typename in {"int32_t", "float"}


def test_file_holds_exactly_the_generated_jets(toy_tree):
    _, arrays = toy_tree
    jets = make_toy_jets(3000, seed=5, signal_fraction=0.4)

    assert len(arrays) == 3000
    np.testing.assert_array_equal(arrays[DEFINITIONS["track_counter"]], ak.num(jets.tracks))
    for name in TRACK_BRANCHES:
        assert ak.all(arrays[name] == jets.tracks[name]), name
    for name in [*(name for names in LABELS.values() for name in names), *CMS_HBB.spectators]:
        np.testing.assert_array_equal(arrays[name], jets[name])


def test_chunked_writing_is_the_same_stream(tmp_path):
    """Jets past the first write chunk continue the same random stream as a single make_toy_jets call."""
    n_jets = load_config("toy_data")["chunk_size"] + 7
    jets = make_toy_jets(n_jets, seed=3)
    path = write_toy_root(tmp_path / "big.root", n_jets, seed=3)

    with uproot.open(path) as file:
        tail = file[DEFINITIONS["tree"]].arrays(["track_pt", "fj_pt"], entry_start=n_jets - 20)
    assert ak.all(tail.track_pt == jets.tracks.track_pt[-20:])
    np.testing.assert_array_equal(tail.fj_pt, jets.fj_pt[-20:])


def test_same_seed_same_jets_other_seed_other_jets():
    first, again, other = make_toy_jets(200, 1), make_toy_jets(200, 1), make_toy_jets(200, 2)
    assert ak.all(first.tracks.trackBTag_Sip3dSig == again.tracks.trackBTag_Sip3dSig)
    assert not np.array_equal(first.fj_pt, other.fj_pt)


def test_labels_are_one_hot(toy_tree):
    _, arrays = toy_tree
    qcd = arrays["sample_isQCD"] * sum(arrays[name] for name in LABELS["qcd_flavours"])
    hbb = arrays["label_H_bb"]

    np.testing.assert_array_equal(qcd + hbb, 1)
    flavours = np.stack([ak.to_numpy(arrays[name]) for name in LABELS["qcd_flavours"]], axis=1)
    assert set(np.unique(flavours)) == {0, 1}
    np.testing.assert_array_equal(flavours.sum(axis=1), 1 - hbb)


def test_signal_fraction_is_respected(toy_tree):
    _, arrays = toy_tree
    share = np.mean(arrays["label_H_bb"])
    assert abs(share - 0.4) < 4 * np.sqrt(0.4 * 0.6 / 3000)


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_extreme_signal_fractions(fraction):
    assert set(np.unique(make_toy_jets(100, 0, fraction).label_H_bb)) == {int(fraction)}


def test_hbb_jets_are_more_displaced_and_heavier(toy_tree):
    _, arrays = toy_tree
    hbb = arrays["label_H_bb"] == 1
    sip = arrays["trackBTag_Sip3dSig"]

    assert ak.mean(sip[hbb]) > ak.mean(sip[~hbb]) + 0.3
    assert ak.mean(arrays["track_dxysig"][hbb] ** 2) > ak.mean(arrays["track_dxysig"][~hbb] ** 2)
    assert abs(np.median(arrays["fj_sdmass"][hbb]) - 125) < 10
    assert np.median(arrays["fj_sdmass"][~hbb]) < 100


def test_every_branch_is_plausible(toy_tree):
    _, arrays = toy_tree
    config = load_config("toy_data")
    flat = {name: ak.to_numpy(ak.flatten(arrays[name])) for name in TRACK_BRANCHES}
    counts = ak.to_numpy(arrays[DEFINITIONS["track_counter"]])

    assert all(np.isfinite(values).all() for values in flat.values())
    assert counts.min() >= config["tracks"]["count_min"] and counts.max() <= config["tracks"]["count_max"]
    assert counts.std() > 1  # track counts vary
    assert (flat["track_pt"] > 0).all() and np.all(arrays["fj_pt"] >= config["jet"]["pt_min"])
    assert set(np.unique(flat["track_charge"])) == {-1.0, 1.0}
    for flag in ["track_isChargedHad", "track_isEl", "track_isMu", "track_puppiw"]:
        assert set(np.unique(flat[flag])) == {0.0, 1.0}, flag
    np.testing.assert_array_equal(flat["track_isChargedHad"] + flat["track_isEl"] + flat["track_isMu"], 1)
    radius = config["jet"]["radius"]
    assert (flat["track_deltaR"] <= radius + 1e-6).all()
    for angle in ["track_etarel", "track_phirel"]:
        assert (np.abs(flat[angle]) <= radius + 1e-6).all(), angle
    for variance in ["track_dxydxy", "track_dzdz", "track_dptdpt", "track_detadeta", "track_dphidphi"]:
        assert (flat[variance] > 0).all(), variance
    assert (flat["trackBTag_JetDistVal"] <= 0).all()
    assert ((flat["track_drminsv"] >= -radius) & (flat["track_drminsv"] <= 0)).all()
    for name, (low, high) in config["bounds"].items():
        assert ((flat[name] >= low) & (flat[name] <= high)).all(), name
    np.testing.assert_array_equal(flat["track_normchi2"], np.floor(flat["track_normchi2"]))
    assert ((flat["trackBTag_PtRatio"] >= 0) & (flat["trackBTag_PParRatio"] <= 1)).all()
    assert (flat["track_erel"] < 1).all() and (flat["track_ptrel"] < 1).all()


def test_soft_leptons_appear_more_in_hbb_jets(toy_tree):
    _, arrays = toy_tree
    hbb = arrays["label_H_bb"] == 1
    has_lepton = ak.to_numpy(ak.any((arrays["track_isMu"] + arrays["track_isEl"]) > 0, axis=1))
    assert 0 < has_lepton[~hbb].mean() < has_lepton[hbb].mean() < 1


@pytest.mark.parametrize(
    "arguments, message",
    [((0, 1), "number of jets"), ((10, -1), "seed"), ((10, 1, 1.5), "signal fraction")],
)
def test_bad_arguments_are_input_errors(tmp_path, arguments, message):
    path = tmp_path / "bad.root"
    with pytest.raises(InputError, match=message):
        write_toy_root(path, *arguments)
    assert not path.exists()


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        write_toy_root(tmp_path / "absent" / "toy.root", 10, 0)


def run_script(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=120)


def test_script_writes_the_file_atomically(tmp_path):
    out = tmp_path / "new" / "toy.root"

    result = run_script("--out", str(out), "--jets", "50", "--seed", "4", "--signal-fraction", "0.3")

    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert [path.name for path in out.parent.iterdir()] == ["toy.root"]  # no temporary file left
    with uproot.open(out) as file:
        arrays = file[DEFINITIONS["tree"]].arrays(["fj_pt"])
    np.testing.assert_array_equal(arrays.fj_pt, make_toy_jets(50, 4, 0.3).fj_pt)


def test_script_reports_bad_input_and_leaves_nothing(tmp_path):
    out = tmp_path / "toy.root"

    result = run_script("--out", str(out), "--jets", "0")

    assert result.returncode == 2
    error = result.stderr
    assert error.startswith("error: ") and "number of jets" in error and error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
