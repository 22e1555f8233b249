"""scripts/attribute.py end to end: the friend tree lines up with the input jets, tracks and edges; bad input
ends in one line with nothing written."""
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
import yaml
from torch_geometric.data import Data

import hin_captum
from hin_captum.cli import console
from hin_captum.config import bundled, load_config
from hin_captum.data.schema import CMS_HBB
from hin_captum.data import make_toy_jets
from hin_captum.data.graphs import fully_connected_edge_index
from hin_captum.models import InteractionNetwork, save_model

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "attribute.py"
TREE = CMS_HBB.tree
MODEL = bundled("pretrained/hin_toy.pt")
FEATURES = CMS_HBB.features
BRANCHES = list(dict.fromkeys(FEATURES))
LABELS = [name for names in CMS_HBB.labels.values() for name in names]
# The documented branch names: a repeated feature's second column gets "_2" (track_pt_2, ...).
BRANCH_NAMES = [name if name not in FEATURES[:k] else f"{name}_2" for k, name in enumerate(FEATURES)]
UNLABELED, NON_FINITE = 2, 4  # jets of the toy file the reader must drop
SUMMARY_FIGURES = ("feature_ranking", "relevance_by_pt_rank", "edge_relevance_by_delta_r", "relevance_by_mass",
                   "relevance_by_pt", "relevance_vs_value")


def write_toy(path, n_jets, seed, unlabeled=(), non_finite=()):
    """Toy jets written as write_toy_root does, with the labels of ``unlabeled`` jets cleared and a NaN
    track_dz in the last track of each ``non_finite`` jet."""
    jets = make_toy_jets(n_jets, seed)
    counts = ak.to_numpy(ak.num(jets["tracks"]))
    dz = ak.to_numpy(ak.flatten(jets["tracks"]["track_dz"])).copy()
    dz[np.cumsum(counts)[list(non_finite)] - 1] = np.nan
    data = {"tracks": ak.with_field(jets["tracks"], ak.unflatten(dz, counts), "track_dz")}
    for name in jets.fields[1:]:
        column = ak.to_numpy(jets[name]).copy()
        if name in LABELS:
            column[list(unlabeled)] = 0
        data[name] = column
    with uproot.recreate(path) as file:
        tree = file.mktree(TREE, {name: value.type if isinstance(value, ak.Array) else value.dtype
                                  for name, value in data.items()},
                           counter_name=lambda _: "n_tracks", field_name=lambda _, inner: inner)
        tree.extend(data)
    return path


def write_with_a_corrupt_basket(path, n_jets=8, seed=53):
    """Toy jets in two baskets (entries [0, n/2) and [n/2, n)); the end of the second basket of track_pt
    overwritten with garbage, as a bad disk or transfer leaves it."""
    write_toy(path, n_jets, seed=seed)
    with uproot.open(path) as file:
        arrays = file[TREE].arrays()
    counts = ak.num(arrays["track_pt"])
    data = {"tracks": ak.zip({name: arrays[name] for name in arrays.fields if arrays[name].ndim == 2}),
            **{name: ak.to_numpy(arrays[name]) for name in arrays.fields if arrays[name].ndim == 1 and
               name != "n_tracks"}}
    with uproot.recreate(path) as file:
        tree = file.mktree(TREE, {name: value.type if isinstance(value, ak.Array) else value.dtype
                                  for name, value in data.items()},
                           counter_name=lambda _: "n_tracks", field_name=lambda _, inner: inner)
        tree.extend({name: value[:n_jets // 2] for name, value in data.items()})
        tree.extend({name: value[n_jets // 2:] for name, value in data.items()})
    with uproot.open(path) as file:
        branch = file[TREE]["track_pt"]
        seek, size = int(branch.member("fBasketSeek")[1]), int(branch.member("fBasketBytes")[1])
    assert len(counts) == n_jets
    with open(path, "r+b") as handle:
        handle.seek(seek + size - 40)
        handle.write(b"\xff" * 40)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attribute")
    return (write_toy(folder / "a.root", 14, seed=31, unlabeled=[UNLABELED], non_finite=[NON_FINITE]),
            write_toy(folder / "b.root", 6, seed=32))


@pytest.fixture(scope="module")
def model():
    return hin_captum.load_model(MODEL)


def run_script(cwd, *arguments):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def read_inputs(paths, entry_stop=None):
    """Per input entry, in file order: features [tracks, 48], and whether the jet is usable (labelled, finite)."""
    entries = []
    for path in paths:
        with uproot.open(path) as file:
            arrays = file[TREE].arrays([*BRANCHES, *LABELS], entry_stop=entry_stop)
        for jet in arrays:
            x = np.array([jet[name].to_list() for name in FEATURES], np.float32).T
            labelled = sum(jet[name] for name in LABELS) > 0
            entries.append((x, bool(labelled and np.isfinite(x).all())))
    return entries


def friend_of(out, method, paths):
    """The friend trees of the input files, one after the other."""
    arrays = []
    for path in paths:
        with uproot.open(out / method / f"{Path(path).stem}.root") as file:
            arrays.append(file["relevance"].arrays())
    return ak.concatenate(arrays)


def check_alignment(out, inputs, model, method, target, max_jets=None, paths=None, **options):
    """The friend trees of ``method`` against the input read independently, and the relevance of a few jets
    against ``hin_captum.attribute`` on that input jet alone."""
    friend = friend_of(out, method, paths)
    usable = [ok for _, ok in inputs]
    n_rows = len(inputs) if max_jets is None else int(np.flatnonzero(usable)[max_jets - 1]) + 1
    assert len(friend) == n_rows
    assert friend["explained"].tolist() == usable[:n_rows]
    n_tracks = [len(x) if ok else 0 for x, ok in inputs[:n_rows]]
    assert friend["rel_n_explained"].tolist() == n_tracks
    input_tracks = [len(x) for x, _ in inputs[:n_rows]]  # every entry keeps one value per input track (ak.zip works)
    assert friend["rel_n_tracks"].tolist() == input_tracks == ak.num(friend["rel_track_pt_2"]).tolist()
    assert ak.all(friend["rel_sum"][~friend["explained"]] == 0)
    has_edges = "edge_src" in friend.fields
    if has_edges:
        assert friend["rel_n_edges"].tolist() == [n * (n - 1) for n in n_tracks]

    for row in np.flatnonzero(usable[:n_rows])[[0, 1, 2, -1]]:  # includes jets right after the dropped ones
        x = torch.from_numpy(inputs[row][0])
        jet = Data(x=x, edge_index=fully_connected_edge_index(len(x)))
        jet_target = int(model(x, jet.edge_index, torch.zeros(len(x), dtype=torch.long)).argmax()) \
            if target == "predicted" else {"qcd": 0, "hbb": 1}[target]
        reference = hin_captum.attribute(model, jet, method=method, target=jet_target, **options)
        written = friend[row]
        assert written["target"] == jet_target
        node = np.stack([written[f"rel_{name}"].to_numpy() for name in BRANCH_NAMES], axis=1)
        np.testing.assert_allclose(node, reference.node, rtol=2e-3, atol=1e-5)
        np.testing.assert_allclose(written["output"], reference.output.item(), rtol=1e-4)
        np.testing.assert_allclose(written["prob_Hbb"], reference.prediction[0, 1], rtol=1e-4, atol=1e-6)
        assert has_edges == (reference.edge is not None)
        if has_edges:
            pairs = list(zip(written["edge_src"].tolist(), written["edge_dst"].tolist()))
            expected = dict(zip(map(tuple, reference.edge_index.t().tolist()), reference.edge_score.tolist()))
            assert sorted(pairs) == sorted(expected)
            np.testing.assert_allclose(written["edge_score"].to_numpy(), [expected[p] for p in pairs],
                                       rtol=2e-3, atol=1e-6)
    return friend


def test_lrp_writes_a_friend_file_aligned_with_the_input_a_copy_a_summary_and_plots(tmp_path, toy, model):
    out = tmp_path / "out"
    result = run_script(tmp_path, "--method", "lrp", "--data", toy[0], "--out", out, "--plot", 1, "--pdf",
                        "--torch", "--chunk-size", 5)

    assert result.returncode == 0, result.stderr
    friend = check_alignment(out, read_inputs([toy[0]]), model, "lrp", "hbb", paths=[toy[0]])
    assert "explained 12 jets, skipped 2 (1 non-finite features, 1 unlabeled)" in result.stdout
    assert f"wrote {out / 'lrp'}/" in result.stdout and "jets/s" in result.stdout
    explained = friend["explained"].to_numpy()
    absorbed = friend["rel_absorbed"].to_numpy()
    np.testing.assert_allclose(absorbed[explained], (friend["output"] - friend["rel_total"]).to_numpy()[explained],
                               atol=1e-4)
    share = np.abs(absorbed).sum() / np.abs(friend["output"].to_numpy()).sum()
    assert f"lrp: biases and epsilon kept {100 * share:.1f}% of the explained logits" in result.stdout
    copy = torch.load(out / "lrp" / "a.pt", weights_only=True)
    assert copy["entry"].tolist() == [row for row in range(14) if row not in (UNLABELED, NON_FINITE)]
    np.testing.assert_array_equal(copy["output"].numpy(), friend["output"][copy["entry"].numpy()])
    names = {path.name for path in (out / "lrp").iterdir()}
    plots = {f"{stem}.{kind}" for stem in ("hbb1_heatmap", "hbb1_3d", *SUMMARY_FIGURES) for kind in ("png", "pdf")}
    assert names == {"a.root", "a.pt", "summary.root"} | plots

    again = run_script(tmp_path, "--method", "lrp", "--data", toy[0], "--out", out, "--plot", 0, "--torch",
                       "--chunk-size", 5)
    assert again.returncode == 0, again.stderr
    assert "skipped 1 complete file(s) of an identical earlier run" in again.stdout
    assert "explained 12 jets, skipped 2 (1 non-finite features, 1 unlabeled)" in again.stdout


def test_gradient_methods_on_the_bundled_default_with_max_jets_and_predicted_target(tmp_path, model):
    # No --data, --model or --out: the bundled toy jets and model, written to ./attribution.
    result = run_script(tmp_path, "--method", "inputxgradient", "--plot", 0, "--max-jets", 5,
                        "--target", "predicted", "--batch-size", 2)

    assert result.returncode == 0, result.stderr
    assert "explained 5 jets, skipped 0 (none); 251 entries not read (--max-jets)" in result.stdout
    out = tmp_path / "attribution"
    data = bundled(load_config("attribute")["data"][0])
    inputs = read_inputs([data], entry_stop=5)
    friend = check_alignment(out, inputs, model, "inputxgradient", "predicted", max_jets=5, paths=[data])
    assert "edge_src" not in friend.fields and "rel_absorbed" not in friend.fields
    assert sorted(path.name for path in (out / "inputxgradient").iterdir()) == sorted(
        ["toy_jets.root", "summary.root", *(f"{name}.png" for name in SUMMARY_FIGURES)])


@pytest.mark.parametrize("reference", ["zero", "data"])
def test_the_reference_reaches_every_method_that_measures_from_one(tmp_path, toy, model, reference):
    out = tmp_path / "out"
    result = run_script(tmp_path, "--method", "lrp,ig", "--data", toy[1], "--out", out, "--plot", 0,
                        "--reference", reference)

    assert result.returncode == 0, result.stderr
    inputs = read_inputs([toy[1]])
    x0 = torch.zeros(48) if reference == "zero" else torch.from_numpy(
        np.concatenate([x for x, ok in inputs if ok]).mean(0))
    check_alignment(out, inputs, model, "lrp", "hbb", paths=[toy[1]], reference=x0)
    ig = friend_of(out, "ig", [toy[1]])
    with torch.no_grad():  # IG adds up to the logit's change from the reference jet
        at_reference = model(x0.expand(len(inputs[0][0]), 48), fully_connected_edge_index(len(inputs[0][0])))[0, 1]
    assert ig["rel_total"][0] == pytest.approx(float(ig["output"][0] - at_reference), abs=2e-2)


def test_gnnexplainer_over_two_files_with_a_config(tmp_path, toy, model):
    config = load_config("attribute")
    config["methods"]["gnnexplainer"] = {"epochs": 3}
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    # One jet per batch: GNNExplainer draws its masks in sequence, so only then is each jet's mask its own.
    result = run_script(tmp_path, "--config", tmp_path / "config.yml", "--method", "gnnexplainer", "--data", *toy,
                        "--out", out, "--plot", 0, "--target", "qcd", "--batch-size", 1)

    assert result.returncode == 0, result.stderr
    friend = check_alignment(out, read_inputs(toy), model, "gnnexplainer", "qcd", paths=toy, epochs=3)
    assert friend["entry"].tolist() == list(range(14)) + list(range(6))


# --- bad input: one line on stderr, exit code 2, nothing written --------------------------------------------


def test_a_missing_file_ends_the_process_with_one_line(tmp_path):
    result = run_script(tmp_path, "--data", tmp_path / "absent.root", "--out", tmp_path / "out")

    assert result.returncode == 2
    assert result.stderr == f"error: no such file: {tmp_path / 'absent.root'}\n"
    assert not (tmp_path / "out").exists()


@pytest.fixture
def attribute(monkeypatch, capsys, tmp_path):
    """Run ``hin-captum attribute`` as ``console.run`` does, in this process (imports once: fast)."""
    monkeypatch.setattr(console, "keep_freed_memory", lambda: True)

    def call(*arguments):
        argv = ["--out", str(tmp_path / "out"), *map(str, arguments)]
        with pytest.raises(SystemExit) as exit:
            console.run(lambda _: console.command("attribute")(argv))
        return exit.value.code, capsys.readouterr()

    return call


def bad_inputs(tmp_path, toy):
    """Each bad input: the arguments and a piece of the message."""
    text = tmp_path / "text.root"
    text.write_text("not a ROOT file\n")
    missing_branch = tmp_path / "no_puppi.root"
    with uproot.open(toy[1]) as file:
        arrays = file[TREE].arrays()
    data = {"tracks": ak.zip({name: arrays[name] for name in BRANCHES if name != "track_puppiw"}),
            **{name: arrays[name].to_numpy() for name in [*LABELS, "fj_pt", "fj_sdmass"]}}
    with uproot.recreate(missing_branch) as file:
        file.mktree(TREE, {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()},
                    counter_name=lambda _: "n_tracks", field_name=lambda _, inner: inner).extend(data)
    unlabeled = write_toy(tmp_path / "unlabeled.root", 3, seed=1, unlabeled=[0, 1, 2])
    not_finite = write_toy(tmp_path / "nan.root", 2, seed=1, non_finite=[0, 1])
    wrong_keys = tmp_path / "wrong_keys.pt"
    torch.save({"weight": torch.zeros(3)}, wrong_keys)
    six_features = save_model(InteractionNetwork(n_features=6, hidden=8), tmp_path / "six.pt")
    return {
        "not ROOT": (["--data", text], f"{text} is not a ROOT file"),
        "missing tree": (["--data", toy[1], "--tree", "events"], "no tree 'events'"),
        "missing branch": (["--data", missing_branch], "lacks branches track_puppiw"),
        "no usable jet (labels)": (["--data", unlabeled], "no usable jets in"),
        "no usable jet (NaN)": (["--data", not_finite], "2 non-finite features"),
        "checkpoint keys": (["--model", wrong_keys, "--data", toy[1]], "does not fit the InteractionNetwork"),
        "checkpoint features": (["--model", six_features, "--data", toy[1]], "does not take the 48 features per track"),
        "not a checkpoint": (["--model", text, "--data", toy[1]], "cannot be loaded as a weights-only"),
        "cuda": (["--device", "cuda", "--data", toy[1]], "--device cuda"),
        "unknown method": (["--method", "lrp,shap", "--data", toy[1]], "unknown method 'shap'"),
        "LRP option": (["--method", "ig", "--epsilon", "0.1", "--data", toy[1]], "only apply to the LRP methods"),
        "bad rule": (["--rules", "bn", "--data", toy[1]], "is not PATTERN=RULE"),
        "reference for masks": (["--method", "saliency,gnnexplainer", "--reference", "zero", "--data", toy[1]],
                                "--reference only applies to methods that measure from a reference point"),
        "unknown layer": (["--rules", "nothing*=pass", "--data", toy[1]], "match no layer"),
    }


CASES = ["not ROOT", "missing tree", "missing branch", "no usable jet (labels)", "no usable jet (NaN)",
         "checkpoint keys", "checkpoint features", "not a checkpoint", "cuda", "unknown method", "LRP option",
         "bad rule", "reference for masks", "unknown layer"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_leaves_no_output(case, attribute, tmp_path, toy):
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    arguments, message = bad_inputs(tmp_path, toy)[case]

    code, captured = attribute(*arguments)

    assert code == 2
    visible = captured.err.split("\r")[-1]  # a progress bar that ran is cleared from the terminal line
    assert visible.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert message in visible
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_the_bad_input_cases_are_all_tested(tmp_path, toy):
    assert sorted(bad_inputs(tmp_path, toy)) == sorted(CASES)
