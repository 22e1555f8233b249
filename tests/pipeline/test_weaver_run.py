"""A weaver-core user's workflow: ``hin-captum attribute --network --data-config --model`` on ROOT ntuples, with
friend files aligned to the input tracks, pair relevance for ParT, resume, Dask, and one-line errors."""
import logging

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

from hin_captum.cli import console
from hin_captum.config import bundled
from hin_captum.data import write_toy_root
from hin_captum.data.schema import CMS_HBB
from hin_captum.models.weaver import PAIR_FEATURES, load_weaver

pytest.importorskip("weaver.utils.dataset")
DATA_CONFIG = bundled("configs/weaver/toy_hbb.yaml")
MODELS = {name: (bundled(f"configs/weaver/{name}.py"), bundled(f"pretrained/{name}_toy.pt"))
          for name in ("particlenet", "part")}
LENGTH = 40


@pytest.fixture(scope="module")
def ntuple(tmp_path_factory):
    """Toy jets in the CMS schema, some with more tracks than the data config's padding length (40)."""
    path = write_toy_root(tmp_path_factory.mktemp("weaver_run") / "jets.root", 150, seed=31)
    with uproot.open(path) as file:
        counts = ak.num(file[CMS_HBB.tree]["track_pt"].array()).to_numpy()
    assert counts.max() > LENGTH
    return path, counts


def attribute(capsys, *arguments):
    with pytest.raises(SystemExit) as exit:
        console.run(lambda _: console.command("attribute")(list(map(str, arguments))))
    return exit.value.code, capsys.readouterr()


def weaver_run(capsys, out, name, data, *options):
    network, state = MODELS[name]
    return attribute(capsys, "--network", network, "--data-config", DATA_CONFIG, "--model", state, "--data", *data,
                     "--out", out, "--plot", 0, "--epsilon", 1e-9, *options)


def friend(out, name="jets"):
    with uproot.open(out / "lrp" / f"{name}.root") as file:
        return file["relevance"].arrays()


def weaver_logits(name, path):
    """The model's logits on inputs built by weaver's own data pipeline."""
    from weaver.utils.data.fileio import _read_files
    from weaver.utils.dataset import _preprocess

    model = load_weaver(*MODELS[name][:1], DATA_CONFIG, MODELS[name][1])
    config = model.data_config
    table = _read_files([str(path)], config.test_load_branches, treename=config.treename)
    arrays, _ = _preprocess(table, config, dict(training=False, shuffle=False, reweight=False, mode="test",
                                                up_sample=True, weight_scale=1, max_resample=10, batch_size=None))
    with torch.no_grad():
        return model.model(*[torch.from_numpy(arrays[f"_{group}"]) for group in config.input_names]).numpy()


@pytest.mark.parametrize("name", MODELS)
def test_a_weaver_model_explains_ntuples_into_friend_files_aligned_track_by_track(tmp_path, capsys, ntuple, name):
    path, counts = ntuple
    code, printed = weaver_run(capsys, tmp_path, name, [path])
    assert code == 0, printed.err
    arrays = friend(tmp_path)
    assert len(arrays) == len(counts) and ak.all(arrays["explained"])
    assert arrays["rel_n_tracks"].tolist() == counts.tolist()  # one value per input track
    assert arrays["rel_n_explained"].tolist() == np.minimum(counts, LENGTH).tolist()  # the padding cuts the rest
    cut = counts > LENGTH
    beyond = arrays["rel_sum"][cut][:, LENGTH:]
    assert ak.all(beyond == 0) and ak.sum(ak.num(beyond)) > 0
    assert ak.any(arrays["rel_trackBTag_Sip3dSig"][:, :LENGTH] != 0)

    np.testing.assert_allclose(arrays["output"], weaver_logits(name, path)[:, 1], rtol=1e-3, atol=3e-3)
    assert np.corrcoef(arrays["rel_total"], arrays["output"])[0, 1] > 0.8
    if name == "part":  # pair relevance per pair feature, half to each direction of a pair
        for feature in PAIR_FEATURES:
            assert f"edge_rel_{feature}" in arrays.fields
        total = sum(arrays[f"edge_rel_{feature}"] for feature in PAIR_FEATURES)
        np.testing.assert_allclose(ak.flatten(total), ak.flatten(arrays["edge_relevance"]), rtol=1e-4, atol=1e-7)
        real = np.minimum(counts, LENGTH)
        assert ak.num(arrays["edge_src"]).tolist() == (real * (real - 1)).tolist()  # every pair of real particles
        assert ak.max(arrays["edge_src"]) < LENGTH
    else:  # ParticleNet: the kNN edges of its first EdgeConv block (k = 8 of each track's n - 1 others)
        real = np.minimum(counts, LENGTH)
        assert ak.num(arrays["edge_src"]).tolist() == (real * np.minimum(8, real - 1)).tolist()
        assert ak.all(arrays["edge_src"] != arrays["edge_dst"]) and ak.max(arrays["edge_src"]) < LENGTH
        assert ak.sum(arrays["edge_relevance"] != 0) > 0


def test_resume_and_two_dask_workers_give_the_same_friend_files(tmp_path, capsys, ntuple):
    distributed = pytest.importorskip("dask.distributed")
    path, _ = ntuple
    code, _ = weaver_run(capsys, tmp_path / "here", "part", [path], "--chunk-size", 60)
    assert code == 0
    code, printed = weaver_run(capsys, tmp_path / "here", "part", [path], "--chunk-size", 60)
    assert code == 0 and "skipped 1 complete file(s)" in printed.out
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        code, printed = weaver_run(capsys, tmp_path / "dask", "part", [path], "--chunk-size", 60, "--scheduler",
                                   cluster.scheduler_address)
    assert code == 0, printed.err
    here, there = friend(tmp_path / "here"), friend(tmp_path / "dask")
    for field in ("explained", "output", "rel_total", "rel_n_tracks"):
        np.testing.assert_allclose(here[field].to_numpy(), there[field].to_numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ak.flatten(here["rel_sum"]), ak.flatten(there["rel_sum"]), rtol=1e-4, atol=1e-6)


def test_bad_weaver_inputs_are_one_line_and_exit_code_2(tmp_path, capsys, ntuple):
    path, _ = ntuple
    missing = tmp_path / "missing.yaml"
    missing.write_text(DATA_CONFIG.read_text().replace("      - [track_quality, null]",
                                                       "      - [track_nonexistent, null]"))
    no_model = tmp_path / "net.py"
    no_model.write_text("import torch\n")
    cases = {
        "missing branch": (["--network", MODELS["part"][0], "--data-config", missing, "--model", MODELS["part"][1]],
                           "lacks branches track_nonexistent: the data config reads them"),
        "no get_model": (["--network", no_model, "--data-config", DATA_CONFIG, "--model", MODELS["part"][1]],
                         "defines no get_model"),
        "wrong state": (["--network", MODELS["part"][0], "--data-config", DATA_CONFIG, "--model",
                         MODELS["particlenet"][1]], "does not fit the network"),
        "no data config": (["--network", MODELS["part"][0], "--model", MODELS["part"][1]], "needs both --network"),
    }
    for case, (options, message) in cases.items():
        code, printed = attribute(capsys, *options, "--data", path, "--out", tmp_path / case)
        assert code == 2, (case, printed.err)
        assert printed.err.startswith("error: ") and message in printed.err and len(printed.err.splitlines()) == 1
        assert not (tmp_path / case).exists()
