"""Generator-level jets written as ROOT files in the JetClass ntuple schema, with truth branches.

One TTree ``tree`` holds JetClass's branches (``part_*`` jagged float32 sharing the counter ``npart``,
``jet_*`` float32, the ten ``label_*`` booleans) and the truth of :mod:`.pythia`: ``part_from_b`` (int32),
``part_from_c``, ``part_hf_lepton`` (bool), ``truth_b{1,2}_{eta,phi}`` and ``truth_sv{1,2}_{x,y,z}`` (float32).
Particles are sorted by pt within a jet; jets of all classes are shuffled together.

Conventions (JetClass's): momenta in GeV; ``part_deta``/``part_dphi`` are the particle's minus the jet
axis's, dphi in (-pi, pi]; impact parameters in mm from the production vertex and the momentum, as
Delphes defines them: d0 = (x py - y px) / pt and dz = z - (x px + y py) / pt * pz / pt.

Approximations: straight tracks (no magnetic field); charged particles' d0 and dz are smeared with a
Gaussian of ``IMPACT_RESOLUTION`` mm, which is also their ``d0err``/``dzerr``; neutral particles have
zero impact parameters and errors. ``jet_sdmass``: soft drop (beta 0, zcut 0.1) on the Cambridge/Aachen
reclustering of the constituents; ``jet_tau1..4``: N-subjettiness, beta 1, R0 0.8, exclusive-kt axes.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from ..util import InputError, atomic_path, writing_into
from .pythia import Jet, generate_events, require_generators

TREE = "tree"
IMPACT_RESOLUTION = 0.02
"""mm: the Gaussian smearing of charged particles' d0 and dz, and their d0err and dzerr."""
SOFT_DROP_ZCUT = 0.1
NSUBJETTINESS_R0 = 0.8
LABELS = ("label_QCD", "label_Hbb", "label_Hcc", "label_Hgg", "label_H4q", "label_Hqql", "label_Zqq", "label_Wqq",
          "label_Tbqq", "label_Tbl")
CLASS_LABELS = {"qcd": "label_QCD", "hbb": "label_Hbb"}
PARTICLE_BRANCHES = ("px", "py", "pz", "energy", "deta", "dphi", "d0val", "d0err", "dzval", "dzerr", "charge",
                     "isChargedHadron", "isNeutralHadron", "isPhoton", "isElectron", "isMuon")
"""The JetClass ``part_*`` branches, without the prefix."""
JET_BRANCHES = ("jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_nparticles", "jet_sdmass", "jet_tau1", "jet_tau2",
                "jet_tau3", "jet_tau4")
TRUTH_BRANCHES = tuple(f"truth_b{b}_{v}" for b in (1, 2) for v in ("eta", "phi")) + tuple(
    f"truth_sv{b}_{v}" for b in (1, 2) for v in "xyz")


def generate_jetclass(path: str | os.PathLike, n_per_class: int, seed: int, classes: Sequence[str] = ("hbb", "qcd"),
                      pt_range: tuple[float, float] = (500.0, 1000.0), progress: bool = False) -> Path:
    """Generate ``n_per_class`` jets of each class and write them to one JetClass-schema ROOT file; return its path.

    Deterministic in ``seed``: each class gets its own Pythia seed drawn from it, and the file's shuffle and
    smearing use it too.
    """
    require_generators()
    _check_seed(seed)
    unknown = sorted(set(classes) - set(CLASS_LABELS))
    if unknown or not classes or len(set(classes)) != len(classes):
        raise InputError(f"the classes must be distinct names among {', '.join(CLASS_LABELS)}, got {list(classes)}")
    seeds = np.random.SeedSequence(int(seed)).generate_state(len(classes))
    jets = [jet for process, class_seed in zip(classes, seeds)
            for jet in generate_events(process, n_per_class, int(class_seed), pt_range, progress=progress)]
    return write_jetclass(path, jets, seed)


def write_jetclass(path: str | os.PathLike, jets: Sequence[Jet], seed: int) -> Path:
    """Write ``jets`` (any classes) to a JetClass-schema ROOT file, atomically; return its path.

    ``seed`` drives the shuffle of the jets and the impact-parameter smearing.
    """
    path = Path(path)
    branches = jetclass_branches(jets, seed)
    with writing_into(path.parent), atomic_path(path) as temporary, uproot.recreate(temporary) as file:
        tree = file.mktree(TREE, {name: array.type for name, array in branches.items()})  # part -> part_px, npart
        tree.extend(branches)
    return path


def jetclass_branches(jets: Sequence[Jet], seed: int) -> dict[str, Any]:
    """The branches of the file :func:`write_jetclass` writes: ``part`` (a record of the jagged ``part_*``
    branches, unprefixed) and the flat jet, label and truth branches."""
    _, fastjet = require_generators()
    _check_seed(seed)
    if not jets:
        raise InputError("there are no jets to write")
    unknown = sorted({jet.process for jet in jets} - set(CLASS_LABELS))
    if unknown:
        raise InputError(f"jets of unknown classes {unknown}: known are {', '.join(CLASS_LABELS)}")
    rng = np.random.default_rng(seed)
    jets = [jets[i] for i in rng.permutation(len(jets))]
    particles = [_particles(jet) for jet in jets]
    counts = [len(jet.px) for jet in jets]
    flat = {name: np.concatenate([columns[name] for columns in particles]) for name in particles[0]}
    charged = flat["charge"] != 0
    for name in ("d0", "dz"):
        flat[f"{name}val"] = np.where(charged, flat[name] + rng.normal(0.0, IMPACT_RESOLUTION, len(charged)), 0.0)
        flat[f"{name}err"] = np.where(charged, IMPACT_RESOLUTION, 0.0)
    part = {name: flat[name].astype(np.float32) for name in PARTICLE_BRANCHES}
    part |= {"from_b": flat["from_b"].astype(np.int32), "from_c": flat["from_c"], "hf_lepton": flat["hf_lepton"]}
    substructure = np.array([_substructure(fastjet, jet) for jet in jets])
    flat_branches = {
        "jet_pt": [jet.pt for jet in jets],
        "jet_eta": [jet.eta for jet in jets],
        "jet_phi": [jet.phi for jet in jets],
        "jet_energy": [jet.energy.sum() for jet in jets],
        "jet_nparticles": counts,
        "jet_sdmass": substructure[:, 0],
        **{f"jet_tau{n}": substructure[:, n] for n in range(1, 5)},
        **dict(zip(TRUTH_BRANCHES, np.array([np.concatenate([jet.b_quarks.ravel(), jet.b_vertices.ravel()])
                                             for jet in jets]).T)),
    }
    return {
        "part": ak.unflatten(ak.zip({name: ak.Array(column) for name, column in part.items()}), counts),
        **{name: ak.Array(np.asarray(column, dtype=np.float32)) for name, column in flat_branches.items()},
        **{label: ak.Array(np.array([CLASS_LABELS[jet.process] == label for jet in jets])) for label in LABELS},
    }


def _check_seed(seed: int) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"the seed must be a non-negative integer, got {seed!r}")


def _particles(jet: Jet) -> dict[str, np.ndarray]:
    """One jet's particle columns, sorted by pt: kinematics relative to the axis, impact parameters (before
    smearing), type flags and truth."""
    pt = np.hypot(jet.px, jet.py)
    order = np.argsort(-pt, kind="stable")
    px, py, pz, pt = jet.px[order], jet.py[order], jet.pz[order], pt[order]
    x, y, z = jet.vertex[order].T
    charge, pdg = jet.charge[order], np.abs(jet.pdg_id[order])
    lepton = (pdg == 11) | (pdg == 13)
    transverse = (x * px + y * py) / pt
    return {
        "px": px, "py": py, "pz": pz, "energy": jet.energy[order],
        "deta": np.arcsinh(pz / pt) - jet.eta,
        "dphi": math.pi - np.mod(math.pi - (np.arctan2(py, px) - jet.phi), 2 * math.pi),
        "d0": (x * py - y * px) / pt,
        "dz": z - transverse * pz / pt,
        "charge": charge,
        "isChargedHadron": (charge != 0) & ~lepton,
        "isNeutralHadron": (charge == 0) & (pdg != 22),
        "isPhoton": pdg == 22,
        "isElectron": pdg == 11,
        "isMuon": pdg == 13,
        "from_b": jet.from_b[order], "from_c": jet.from_c[order], "hf_lepton": jet.hf_lepton[order],
    }


def _substructure(fastjet: Any, jet: Jet) -> list[float]:
    """Soft-drop mass and tau_1..tau_4 of a jet's constituents."""
    particles = [fastjet.PseudoJet(*momentum) for momentum in zip(jet.px, jet.py, jet.pz, jet.energy)]
    return [_soft_drop_mass(fastjet, particles), *_nsubjettiness(fastjet, particles, range(1, 5))]


def _soft_drop_mass(fastjet: Any, particles: list[Any]) -> float:
    """Mass after soft drop with beta 0: decluster the C/A tree, keeping the harder branch, until the softer
    one carries more than ``SOFT_DROP_ZCUT`` of the pt."""
    definition = fastjet.JetDefinition(fastjet.cambridge_algorithm, fastjet.JetDefinition.max_allowable_R)
    sequence = fastjet.ClusterSequence(particles, definition)
    groomed = max(sequence.inclusive_jets(0.0), key=lambda candidate: candidate.pt())
    while True:
        first, second = fastjet.PseudoJet(), fastjet.PseudoJet()
        if not groomed.has_parents(first, second):
            return groomed.m()
        if min(first.pt(), second.pt()) / (first.pt() + second.pt()) > SOFT_DROP_ZCUT:
            return groomed.m()
        groomed = first if first.pt() >= second.pt() else second


def _nsubjettiness(fastjet: Any, particles: list[Any], orders: Iterable[int]) -> list[float]:
    """tau_N (beta 1, normalised by sum pt * R0) with the exclusive-kt axes; 0 for N above the particle count."""
    definition = fastjet.JetDefinition(fastjet.kt_algorithm, fastjet.JetDefinition.max_allowable_R)
    sequence = fastjet.ClusterSequence(particles, definition)
    pt = np.array([particle.pt() for particle in particles])
    rapidity = np.array([particle.rap() for particle in particles])
    phi = np.array([particle.phi() for particle in particles])
    taus = []
    for order in orders:
        if order > len(particles):
            taus.append(0.0)
            continue
        axes = sequence.exclusive_jets(order)
        distances = np.stack([np.hypot(rapidity - axis.rap(), np.remainder(phi - axis.phi() + math.pi, 2 * math.pi)
                                       - math.pi) for axis in axes])
        taus.append(float((pt * distances.min(axis=0)).sum() / (pt.sum() * NSUBJETTINESS_R0)))
    return taus
