"""The JetClass authors' own trained ParticleNet taggers, as they are, on Pythia jets in the JetClass schema: from the
command line with default options and from Python with defaults, on any batches after any calls.

Skipped without ``../shared/reference/jetclass`` (the checkpoints), weaver-core, or the generate extra.
"""
from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch
import uproot

import hin_captum
from hin_captum.cli import console
from tests.conftest import REFERENCE

pytest.importorskip("weaver.utils.dataset")
pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")
JETCLASS = REFERENCE / "jetclass"
NETWORK = JETCLASS / "example_ParticleNet.py"
CHECKPOINTS = {"kin": JETCLASS / "ParticleNet_kin.pt", "full": JETCLASS / "ParticleNet_full.pt"}
K = 16
"""The neighbours of the example network's EdgeConv blocks."""


@pytest.fixture(scope="module")
def jetclass_files(tmp_path_factory):
    """Two files of Pythia H->bb and QCD jets in the JetClass schema (tree ``tree``, the file's only one)."""
    if not NETWORK.is_file():
        pytest.skip("../shared/reference/jetclass is absent (the JetClass authors' checkpoints)")
    from hin_captum.generation.jetclass import generate_jetclass

    folder = tmp_path_factory.mktemp("jetclass")
    return [generate_jetclass(folder / "a.root", 12, seed=1), generate_jetclass(folder / "b.root", 8, seed=2)]


def load(variant: str):
    from hin_captum.models.weaver import load_weaver

    return load_weaver(NETWORK, JETCLASS / f"JetClass_{variant}.yaml", CHECKPOINTS[variant])


def weaver_arrays(config, path) -> dict[str, np.ndarray]:
    """The model's inputs as weaver's own functions build them from a file."""
    from weaver.utils.data.preprocess import _build_new_variables
    from weaver.utils.dataset import _finalize_inputs

    with uproot.open(path) as file:
        table = file["tree"].arrays(list(config.test_load_branches))
    output = _finalize_inputs(_build_new_variables(table, config.test_var_funcs), config)
    return {group: output[f"_{group}"] for group in config.input_names}


def attribute(capsys, *arguments):
    with pytest.raises(SystemExit) as exit:
        console.run(lambda _: console.command("attribute")(list(map(str, arguments))))
    return exit.value.code, capsys.readouterr()


@pytest.mark.parametrize("variant", ["kin", "full"])
def test_the_command_explains_the_jetclass_checkpoints_with_default_options(tmp_path, capsys, jetclass_files,
                                                                         variant):
    path = jetclass_files[0]
    code, printed = attribute(capsys, "--network", NETWORK, "--data-config", JETCLASS / f"JetClass_{variant}.yaml",
                              "--model", CHECKPOINTS[variant], "--data", path, "--target", "label_Hbb",
                              "--out", tmp_path)

    assert code == 0, printed.err
    assert "Traceback" not in printed.err
    with uproot.open(tmp_path / "lrp" / "a.root") as file:
        friend = file["relevance"].arrays()
    with uproot.open(path) as file:
        particles = ak.num(file["tree"]["part_px"].array()).to_numpy()
    real = np.minimum(particles, 128)
    assert len(friend) == len(particles) and ak.all(friend["explained"])
    assert ak.num(friend["rel_part_pt_log"]).tolist() == particles.tolist()  # one value per input particle
    assert ak.all(friend["rel_part_pt_log"] != 0)  # every real particle carries relevance (none padded here)
    assert ak.num(friend["edge_src"]).tolist() == (real * np.minimum(K, real - 1)).tolist()  # the kNN edges
    tagger = load(variant)  # the explained logit is the model's on weaver's own arrays (padded by wrapping)
    arrays = weaver_arrays(tagger.data_config, path)
    with torch.no_grad():
        logits = tagger.model(*(torch.from_numpy(array) for array in arrays.values()))
    np.testing.assert_allclose(friend["output"], logits[:, 1].numpy(), rtol=0, atol=1e-3 * float(logits.abs().max()))
    figures = sorted(path.name for path in (tmp_path / "lrp").glob("*.png"))
    assert {"hbb1_heatmap.png", "hbb3_3d.png", "feature_ranking.png"} <= set(figures), figures  # 3 jets read back
    assert (tmp_path / "lrp" / "summary.root").is_file()


def load_network(name: str):
    """A tagger of the JetClass authors' network files: the trained ParticleNet_kin, or their ParT (no trained weights
    here: random ones, the same for every load)."""
    if name == "ParticleNet_kin":
        return load("kin")
    from hin_captum.models.weaver import load_weaver

    torch.manual_seed(0)
    return load_weaver(JETCLASS / "example_ParticleTransformer.py", JETCLASS / "JetClass_kin.yaml")


@pytest.mark.parametrize("name, sizes", [("ParticleNet_kin", (2, 64, 1, 3, 17, 5)), ("ParT", (2, 12, 1, 3))])
def test_lrp_with_defaults_on_the_bare_model_after_any_calls_equals_a_fresh_models(jetclass_files, name, sizes):
    """``hin_captum.LRP(model)`` with its defaults on weaver's arrays, batch after batch of several sizes from two
    files, on a model whose trimmer has warmed up (it then cuts the padding), against a fresh model each time."""
    used = load_network(name)
    arrays = [weaver_arrays(used.data_config, path) for path in jetclass_files]
    with torch.no_grad():  # weaver's SequenceTrimmer trims the padding after its first 5 calls
        for _ in range(6):
            used.model(*[torch.from_numpy(array[:2]) for array in arrays[0].values()])
    explainer = hin_captum.LRP(used.model)
    generator = np.random.default_rng(5)
    for size in sizes:
        source = arrays[int(generator.integers(0, 2))]
        rows = generator.choice(len(source["pf_points"]), size=min(int(size), len(source["pf_points"])),
                                replace=False)
        points, features, vectors, mask = (torch.from_numpy(source[group][rows]) for group in source)

        ours = explainer.attribute((points, features), target=1, additional_forward_args=(vectors, mask))
        fresh = hin_captum.LRP(load_network(name).model).attribute((points, features), target=1,
                                                                   additional_forward_args=(vectors, mask))

        for got, expected in zip(ours, fresh):  # float32 sums over trimmed or full padding: equal to rounding
            assert got.shape == expected.shape
            assert (got - expected).abs().max() <= 1e-3 * max(float(expected.abs().max()), 1e-6)
        assert (ours[1] * (1 - mask)).abs().max() == 0 and ours[1].abs().max() > 0


def test_lrp_at_epsilon_zero_from_zero_is_input_times_gradient_on_the_trained_particlenet(jetclass_files):
    model = load("kin").model
    inputs = weaver_arrays(load("kin").data_config, jetclass_files[1])
    points, features, vectors, mask = (torch.from_numpy(array) for array in inputs.values())

    x = features.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(model(points, x, vectors, mask)[:, 1].sum(), x)
    _, relevance = hin_captum.LRP(model, epsilon=1e-9, reference="zero").attribute(
        (points, features), target=1, additional_forward_args=(vectors, mask))

    expected = (features * gradient).double()
    assert (relevance.double() - expected).abs().max() <= 1e-4 * expected.abs().max()
