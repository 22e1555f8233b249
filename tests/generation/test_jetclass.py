"""Pythia 8 + FastJet jets in JetClass-schema ROOT files: determinism, read-back, truth, cuts, the missing extra."""
import math
import sys
from collections import deque
from itertools import islice
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hin_captum.generation.jetclass import (IMPACT_RESOLUTION, JET_BRANCHES, LABELS, PARTICLE_BRANCHES, TREE,
                                            TRUTH_BRANCHES, generate_jetclass)
from hin_captum.generation.pythia import INSTALL, generate_events, hadron_flavour, iterate_jets
from hin_captum.util import InputError

JETCLASS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "jetclass"
N_PER_CLASS = 12
SEED = 5


@pytest.fixture(scope="module")
def generators() -> None:
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")


@pytest.fixture(scope="module")
def jetclass_file(generators, tmp_path_factory) -> Path:
    return generate_jetclass(tmp_path_factory.mktemp("jetclass") / "jets.root", N_PER_CLASS, seed=SEED)


def read(path: Path) -> ak.Array:
    with uproot.open(path) as file:
        return file[TREE].arrays()


def test_the_same_seed_gives_the_same_file_and_another_seed_another(jetclass_file, tmp_path):
    first = read(jetclass_file)
    again = read(generate_jetclass(tmp_path / "again.root", N_PER_CLASS, seed=SEED))
    other = read(generate_jetclass(tmp_path / "other.root", N_PER_CLASS, seed=SEED + 1))
    assert first.fields == again.fields
    assert all(ak.array_equal(first[name], again[name], equal_nan=True) for name in first.fields)
    assert not ak.array_equal(first.jet_pt, other.jet_pt)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["again.root", "other.root"]  # no temporaries left


def test_the_file_holds_the_jetclass_branches_and_the_truth(jetclass_file):
    with uproot.open(jetclass_file) as file:
        tree = file[TREE]
        particles = [f"part_{name}" for name in PARTICLE_BRANCHES]
        truth = ["part_from_b", "part_from_c", "part_hf_lepton", *TRUTH_BRANCHES]
        assert set(tree.keys()) == {"npart", *particles, *JET_BRANCHES, *LABELS, *truth}
        assert all(str(tree[name].interpretation.content.to_dtype) == "float32" for name in particles)
        assert all(tree[name].interpretation.to_dtype == np.float32 for name in (*JET_BRANCHES, *TRUTH_BRANCHES))
        assert all(tree[name].interpretation.to_dtype == np.bool_ for name in LABELS)


def test_particles_follow_the_jetclass_conventions(jetclass_file):
    jets = read(jetclass_file)
    pt = np.hypot(jets.part_px, jets.part_py)
    assert ak.all(pt[:, :-1] >= pt[:, 1:])  # sorted by pt
    eta = np.arcsinh(jets.part_pz / pt)
    assert ak.all(abs(eta - jets.jet_eta - jets.part_deta) < 1e-4)  # particle minus jet
    assert ak.all((jets.part_dphi > -math.pi) & (jets.part_dphi <= math.pi))
    phi = np.arctan2(jets.part_py, jets.part_px)
    assert ak.all(abs(np.remainder(phi - jets.jet_phi - jets.part_dphi + 1, 2 * math.pi) - 1) < 1e-4)
    charged = jets.part_charge != 0
    for name in ("d0", "dz"):
        assert ak.all(jets[f"part_{name}err"] == np.where(charged, np.float32(IMPACT_RESOLUTION), 0))
        assert ak.all((jets[f"part_{name}val"] == 0) | charged)
    kinds = [jets[f"part_is{kind}"] for kind in ("ChargedHadron", "NeutralHadron", "Photon", "Electron", "Muon")]
    assert ak.all(sum(kind * 1 for kind in kinds) == 1)  # every particle of exactly one kind
    assert ak.all(jets.jet_nparticles == jets.npart)
    assert np.allclose(ak.sum(jets.part_energy, axis=1), jets.jet_energy, rtol=1e-4)
    hbb = jets.label_Hbb
    assert np.median(jets.jet_sdmass[hbb]) > 2 * np.median(jets.jet_sdmass[~hbb])
    assert ak.mean(jets.part_from_b[hbb] > 0) > 0.15 > ak.mean(jets.part_from_b[~hbb] > 0)


def test_weaver_reads_the_file_with_the_jetclass_data_configs(jetclass_file):
    pytest.importorskip("weaver")
    if not (JETCLASS / "JetClass_kin.yaml").is_file():
        pytest.skip("../shared/reference/jetclass is absent (optional real material)")
    from weaver.utils.data.config import DataConfig
    from weaver.utils.data.preprocess import _build_new_variables
    from weaver.utils.dataset import _finalize_inputs

    for name in ("JetClass_kin.yaml", "JetClass_full.yaml"):
        config = DataConfig.load(str(JETCLASS / name), load_observers=True, load_reweight_info=False)
        with uproot.open(jetclass_file) as file:
            arrays = file[TREE].arrays(list(config.test_load_branches))
        inputs = _finalize_inputs(_build_new_variables(arrays, config.test_var_funcs), config)
        for group, variables in config.input_dicts.items():
            assert inputs["_" + group].shape == (2 * N_PER_CLASS, len(variables), 128)
            assert np.isfinite(inputs["_" + group]).all()
    if (JETCLASS / "ParticleNet_kin.pt").is_file():  # the JetClass authors' tagger tells the classes apart
        import torch

        from hin_captum.models.weaver import load_weaver

        tagger = load_weaver(JETCLASS / "example_ParticleNet.py", JETCLASS / "JetClass_kin.yaml",
                             JETCLASS / "ParticleNet_kin.pt")
        config = tagger.data_config
        with uproot.open(jetclass_file) as file:
            arrays = file[TREE].arrays(list(config.test_load_branches))
        inputs = _finalize_inputs(_build_new_variables(arrays, config.test_var_funcs), config)
        with torch.no_grad():
            probabilities = tagger.model.eval()(*[torch.from_numpy(inputs["_" + group])
                                                  for group in config.input_names]).softmax(1).numpy()
        score = probabilities[:, 1] / (probabilities[:, 0] + probabilities[:, 1])
        hbb = arrays.label_Hbb.to_numpy()
        assert (score[hbb][:, None] > score[~hbb][None, :]).mean() > 0.8  # ROC AUC


def test_jets_lie_within_the_cuts_and_hbb_jets_hold_both_b_quarks(jetclass_file):
    jets = read(jetclass_file)
    assert ak.all((jets.jet_pt >= 500) & (jets.jet_pt <= 1000) & (abs(jets.jet_eta) < 2))
    hbb, qcd = jets.label_Hbb.to_numpy(), jets.label_QCD.to_numpy()
    assert hbb.sum() == qcd.sum() == N_PER_CLASS and (hbb ^ qcd).all()
    assert not any(ak.any(jets[label]) for label in LABELS if label not in ("label_Hbb", "label_QCD"))
    for b in (1, 2):
        eta, phi = jets[f"truth_b{b}_eta"].to_numpy(), jets[f"truth_b{b}_phi"].to_numpy()
        distance = np.hypot(eta - jets.jet_eta.to_numpy(),
                            np.remainder(phi - jets.jet_phi.to_numpy() + math.pi, 2 * math.pi) - math.pi)
        assert (distance[hbb] < 0.8).all() and np.isnan(distance[qcd]).all()


def documented_mothers(particle) -> list[int]:
    """The mothers of a particle by the six cases of Pythia's documentation of mother1 and mother2."""
    first, second, status = particle.mother1(), particle.mother2(), abs(particle.status())
    if second == 0 or second == first:
        return [first] if first > 0 else []
    if first < second and (81 <= status <= 86 or 101 <= status <= 106):  # a string's range of partons
        return list(range(first, second + 1))
    return [first, second]


def quark_digits(particle) -> str:
    return f"{particle.idAbs() % 10_000:04d}"[:3] if particle.isHadron() else ""


def walked_flavours(event, index: int) -> tuple[bool, bool]:
    """Whether a b-hadron and whether a c-hadron (one without b) is among the ancestors, breadth first."""
    seen, queue, bottom, charm = set(), deque(documented_mothers(event[index])), False, False
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        digits = quark_digits(event[current])
        bottom = bottom or "5" in digits
        charm = charm or ("4" in digits and "5" not in digits)
        queue.extend(documented_mothers(event[current]))
    return bottom, charm


@pytest.mark.parametrize("process", ["hbb", "qcd"])
def test_truth_flags_match_an_independent_walk_over_the_event_record(generators, process):
    decay_products = 0
    for jet, event in islice(iterate_jets(process, seed=SEED), 3):
        walked = np.array([walked_flavours(event, int(index)) for index in jet.index]).reshape(-1, 2)
        assert np.array_equal(jet.from_b > 0, walked[:, 0]) and np.array_equal(jet.from_c, walked[:, 1])
        leptons = np.isin(np.abs(jet.pdg_id), (11, 13))
        assert np.array_equal(jet.hf_lepton, leptons & walked.any(axis=1))
        assert np.isnan(jet.b_quarks).all() == (process == "qcd")
        for position, index in enumerate(jet.index):  # direct products of a weakly decaying b-hadron: its vertex
            particle = event[int(index)]
            mother = event[particle.mother1()]
            weak = "5" in quark_digits(mother) and not any("5" in quark_digits(event[daughter])
                                                            for daughter in mother.daughterList())
            if particle.mother2() == 0 and weak and jet.from_b[position] <= 2:
                assert np.allclose(jet.vertex[position], jet.b_vertices[jet.from_b[position] - 1])
                decay_products += 1
    assert decay_products > 0 or process == "qcd"


@pytest.mark.parametrize("module", ["pythia8mc", "fastjet"])
def test_without_the_generate_extra_the_error_is_one_line(monkeypatch, tmp_path, module):
    monkeypatch.setitem(sys.modules, module, None)
    for generate in (lambda: generate_events("hbb", 1, seed=0), lambda: generate_jetclass(tmp_path / "x.root", 1, 0)):
        with pytest.raises(InputError) as error:
            generate()
        assert str(error.value) == INSTALL and "\n" not in INSTALL
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("pdg_id, flavour", [(521, 5), (-5122, 5), (553, 5), (10521, 5), (541, 5), (411, 4),
                                              (-4122, 4), (443, 4), (211, 2), (130, 3), (5101, 0), (-5, 0), (13, 0),
                                              (22, 0), (1000021, 0)])
def test_hadron_flavour_is_the_heaviest_quark_of_a_hadron(pdg_id, flavour):
    assert hadron_flavour(pdg_id) == flavour
