"""hin-captum prototype end to end: prototypes.root in the input's schema (read back by read_root, scored as the run
scored them), its LRP friend file, the figures; bad settings end in one line and exit code 2."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot

from hin_captum import bundled, load_model
from hin_captum.cli import console
from hin_captum.data import read_root
from hin_captum.data.schema import CMS_HBB

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "prototype.py"


def run_script(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prototypes")
    result = run_script("--n", "6", "--plot", "2", "--out", "out", "--threads", "2", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "out", result


def test_prototypes_root_reads_back_as_many_jets_as_asked_and_scores_as_the_run_did(made):
    out, result = made
    jets = read_root(out / "prototypes.root").jets
    assert len(jets) == 6 and all(int(jet.y) == 1 for jet in jets)
    with uproot.open(out / "prototypes.root") as file:
        written = file[CMS_HBB.tree].arrays(["prototype_score", "start_entry"], library="np")
    model = load_model(bundled("pretrained/hin_toy.pt"))
    with torch.no_grad():
        scores = [float(torch.softmax(model(jet.x, jet.edge_index, torch.zeros(len(jet.x), dtype=torch.long)),
                                      -1)[0, 1]) for jet in jets]
    np.testing.assert_allclose(scores, written["prototype_score"], atol=1e-5)
    assert (written["prototype_score"] >= 0.99).all()
    starts = read_root(bundled("pretrained/toy_jets.root")).jets
    for jet, entry in zip(jets, written["start_entry"]):
        assert len(jet.x) == len(starts[int(entry)].x)  # the starting jet's tracks
    assert "6 of 6 reach p(Hbb) >= 0.99" in result.stdout


def test_the_friend_file_explains_every_prototype_and_the_figures_exist(made):
    out, _ = made
    with uproot.open(out / "lrp" / "prototypes.root") as file:
        friend = file["relevance"].arrays(["explained", "prob_Hbb"], library="np")
    assert friend["explained"].tolist() == [True] * 6 and (friend["prob_Hbb"] >= 0.99).all()
    assert sorted(path.name for path in (out / "figures").iterdir()) == [
        "moved_features.png", "prototype0.png", "prototype1.png"]
    assert not [path for path in out.rglob("*") if path.name.endswith(".tmp")]


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n must be a positive integer"),
    (["--target", "predicted"], "a prototype needs one class to maximise"),
    (["--n", "300"], "300 prototypes need at least 300 jets"),
])
def test_bad_settings_end_in_one_line_and_exit_code_2(args, message, tmp_path, monkeypatch, capsys):
    """As console.run runs the script, in this process (the import once: fast)."""
    monkeypatch.setattr(console, "keep_freed_memory", lambda: True)
    with pytest.raises(SystemExit) as exit:
        console.run(lambda _: console.command("prototype")([*args, "--out", str(tmp_path / "out")]))
    stderr = capsys.readouterr().err
    assert exit.value.code == 2 and message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "prototypes.root").exists()
