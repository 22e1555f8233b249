"""Boosted H->bb and QCD jets from Pythia 8, clustered with FastJet, with per-particle truth.

The processes are JetClass's (pp at 13 TeV): ``hbb`` is ZH with Z->nunu and H->bb, ``qcd`` is
Z(->nunu)+jet. The leading anti-kt jet of each event is kept when its pt and |eta| lie in range
and, for ``hbb``, both b quarks of the H decay (their last copies) lie within the jet radius of its axis.

Approximations:

* Generator level: every visible stable particle (Pythia's default, c tau0 > 10 mm, so K0S and Lambda
  are stable) is a jet constituent. No detector, no pileup, no thresholds; the primary vertex is the origin.
* The hard process is generated with pTHat above ``PT_HAT_FRACTION`` times the lower jet pt bound,
  which loses a few per cent of the jets near that bound (measured for 500-1000 GeV: about 4% of the
  H->bb and 2% of the QCD jets come from events below that pTHat).

Truth, found by walking each particle's mothers (``motherList``) through Pythia's event record:

* A b-hadron is a hadron whose heaviest quark is b (a 5 among its quark digits); a c-hadron one whose
  heaviest quark is c. Chains of b-hadrons (B* -> B gamma, B0 -> B0bar mixing) count as one b-hadron,
  named by its last member, the one that decays weakly: its decay vertex is the secondary vertex.
* ``from_b``: 0 for a particle without a b-hadron ancestor, else the rank (1, 2, ...) by pt of its
  b-hadron among the distinct b-hadrons of the jet. ``from_c``: any c-hadron ancestor. ``hf_lepton``:
  an electron or muon with a b- or c-hadron ancestor.
"""
from __future__ import annotations

import math
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..util import InputError

INSTALL = "this needs the generate extra (pythia8mc, fastjet): pip install --only-binary=:all: pythia8mc fastjet"
Z_TO_NEUTRINOS = ("23:onMode = off", "23:onIfAny = 12 14 16")
PROCESSES = {
    "hbb": ("HiggsSM:ffbar2HZ = on", *Z_TO_NEUTRINOS, "25:onMode = off", "25:onIfMatch = 5 -5"),
    "qcd": ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on", "WeakZ0:gmZmode = 2",
            *Z_TO_NEUTRINOS),
}
COMMON_SETTINGS = ("Beams:eCM = 13000.", "Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on")
PT_HAT_FRACTION = 0.8
"""pTHatMin of the hard process, as a fraction of the lower jet pt bound."""
MAX_PYTHIA_SEED = 900_000_000
MAX_FAILED_EVENTS = 100
NEUTRINOS = frozenset({12, 14, 16})
LEPTONS = frozenset({11, 13})
HIGGS = 25
BOTTOM, CHARM = 5, 4


@dataclass(frozen=True, eq=False)
class Jet:
    """One generator-level jet: per-constituent arrays (in clustering order) and the jet's truth."""

    process: str
    pt: float
    eta: float
    phi: float
    index: np.ndarray
    """int64: the constituents' positions in Pythia's event record."""
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    energy: np.ndarray
    """float64, GeV."""
    charge: np.ndarray
    """float64, in units of e."""
    pdg_id: np.ndarray
    vertex: np.ndarray
    """[constituents, 3] float64: production vertex x, y, z (mm)."""
    from_b: np.ndarray
    """int64: 0 without a b-hadron ancestor, else the rank by pt of the b-hadron among the jet's."""
    from_c: np.ndarray
    """bool: a c-hadron ancestor."""
    hf_lepton: np.ndarray
    """bool: an electron or muon with a b- or c-hadron ancestor."""
    b_quarks: np.ndarray
    """[2, 2]: eta and phi of the two b quarks of the H decay (last copies); NaN for QCD."""
    b_vertices: np.ndarray
    """[2, 3]: decay vertex (mm) of b-hadrons 1 and 2; NaN where absent."""


def generate_events(process: str, n_jets: int, seed: int, pt_range: tuple[float, float] = (500.0, 1000.0),
                    max_abs_eta: float = 2.0, radius: float = 0.8, progress: bool = False) -> list[Jet]:
    """``n_jets`` jets of ``process`` (``hbb`` or ``qcd``), one per accepted event; deterministic in ``seed``
    (Pythia's seed is ``seed % 900000000 + 1``)."""
    if not isinstance(n_jets, (int, np.integer)) or n_jets < 1:
        raise InputError(f"the number of jets must be a positive integer, got {n_jets!r}")
    jets = iterate_jets(process, seed, pt_range, max_abs_eta, radius)
    return [jet for jet, _ in tqdm(islice(jets, n_jets), total=n_jets, desc=process, unit="jet", disable=not progress)]


def iterate_jets(process: str, seed: int, pt_range: tuple[float, float] = (500.0, 1000.0),
                 max_abs_eta: float = 2.0, radius: float = 0.8) -> Iterator[tuple[Jet, Any]]:
    """Accepted jets, without end, each with the Pythia event record it came from (valid until the next one)."""
    pythia8mc, fastjet = require_generators()
    _check(process, seed, pt_range, max_abs_eta, radius)
    pythia = pythia8mc.Pythia(_xmldoc(), False)
    settings = (*COMMON_SETTINGS, *PROCESSES[process], f"PhaseSpace:pTHatMin = {PT_HAT_FRACTION * pt_range[0]}",
                f"Random:seed = {seed % MAX_PYTHIA_SEED + 1}")
    for setting in settings:
        if not pythia.readString(setting):
            raise RuntimeError(f"Pythia rejected the setting {setting!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise the {process} process")
    return _accepted_jets(pythia, fastjet, process, pt_range, max_abs_eta, radius)


def _accepted_jets(pythia: Any, fastjet: Any, process: str, pt_range: tuple[float, float], max_abs_eta: float,
                   radius: float) -> Iterator[tuple[Jet, Any]]:
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    event, failures = pythia.event, 0
    while True:
        if not pythia.next():
            failures += 1
            if failures > MAX_FAILED_EVENTS:
                raise RuntimeError(f"Pythia failed {failures} events in a row")
            continue
        failures = 0
        leading = _leading_jet(fastjet, event, definition)
        if leading is None:
            continue
        pt, eta, phi, constituents = leading
        if not (pt_range[0] <= pt <= pt_range[1] and abs(eta) < max_abs_eta):
            continue
        b_quarks = np.full((2, 2), np.nan)
        if process == "hbb":
            b_quarks = np.array([(event[b].eta(), event[b].phi()) for b in _higgs_b_quarks(event)])
            if max(_delta_r(b_eta, b_phi, eta, phi) for b_eta, b_phi in b_quarks) >= radius:
                continue
        yield _jet(process, (pt, eta, phi), constituents, event, b_quarks), event


def require_generators() -> tuple[Any, Any]:
    """The ``pythia8mc`` and ``fastjet`` modules, or one line that says how to install them."""
    try:
        import fastjet
        import pythia8mc
    except ImportError:
        raise InputError(INSTALL) from None
    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    return pythia8mc, fastjet


def hadron_flavour(pdg_id: int) -> int:
    """The heaviest quark of a hadron (5 for b, 4 for c, ...) from its PDG id; 0 for anything but a hadron."""
    code = abs(pdg_id)
    digits = code % 10_000  # the quark digits n_q1 n_q2 n_q3 and the spin digit
    # Not hadrons: quarks, leptons and bosons (< 100), diquarks (n_q3 = 0), SUSY and other new states (n = 1..8).
    if code < 100 or (digits // 10) % 10 == 0 or code // 1_000_000 not in (0, 9):
        return 0
    return max(digits // 1000, (digits // 100) % 10, (digits // 10) % 10)


def _check(process: str, seed: int, pt_range: tuple[float, float], max_abs_eta: float, radius: float) -> None:
    if process not in PROCESSES:
        raise InputError(f"the process must be one of {', '.join(PROCESSES)}, got {process!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"the seed must be a non-negative integer, got {seed!r}")
    if not 0 < pt_range[0] < pt_range[1]:
        raise InputError(f"the pt range must be (low, high) with 0 < low < high, got {pt_range!r}")
    if max_abs_eta <= 0 or radius <= 0:
        raise InputError(f"the |eta| bound and the jet radius must be positive, got {max_abs_eta}, {radius}")


def _xmldoc() -> str:
    """Pythia's settings folder: $PYTHIA8DATA, else the one the wheel installs under share/; '' lets Pythia look."""
    candidates = [os.environ.get("PYTHIA8DATA", "")]
    candidates += [os.path.join(sysconfig.get_path("data", scheme), "share", "Pythia8", "xmldoc")
                   for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user")]
    return next((path for path in candidates if path and Path(path, "Index.xml").is_file()), "")


def _leading_jet(fastjet: Any, event: Any, definition: Any) -> tuple[float, float, float, list[int]] | None:
    """pt, eta, phi and constituents (record positions) of the leading jet of the visible final-state particles."""
    particles = []
    for index in range(event.size()):
        particle = event[index]
        if particle.isFinal() and particle.idAbs() not in NEUTRINOS:
            pseudojet = fastjet.PseudoJet(particle.px(), particle.py(), particle.pz(), particle.e())
            pseudojet.set_user_index(index)
            particles.append(pseudojet)
    sequence = fastjet.ClusterSequence(particles, definition)
    jets = sequence.inclusive_jets(0.0)
    if not jets:
        return None
    jet = max(jets, key=lambda candidate: candidate.pt())
    return jet.pt(), jet.eta(), jet.phi_std(), [constituent.user_index() for constituent in jet.constituents()]


def _higgs_b_quarks(event: Any) -> list[int]:
    """Record positions of the last copies of the b and bbar of the H decay."""
    higgs = next(index for index in range(event.size()) if event[index].id() == HIGGS)
    return [event[daughter].iBotCopyId() for daughter in event[event[higgs].iBotCopyId()].daughterList()]


def _delta_r(eta: float, phi: float, other_eta: float, other_phi: float) -> float:
    return math.hypot(eta - other_eta, math.remainder(phi - other_phi, 2 * math.pi))


def _jet(process: str, axis: tuple[float, float, float], constituents: list[int], event: Any, b_quarks: np.ndarray
         ) -> Jet:
    """The jet (pt, eta, phi) with its constituents read from the event record and their heavy-flavour truth."""
    index = np.array(constituents, dtype=np.int64)
    particles = [event[int(i)] for i in index]
    ancestry = _Ancestry(event)
    b_hadrons = [frozenset(ancestry.last_b_hadron(h) for h in ancestry.of(int(i))[0]) for i in index]
    ranked = sorted(frozenset().union(*b_hadrons), key=lambda h: (-event[h].pT(), h))
    rank = {hadron: position + 1 for position, hadron in enumerate(ranked)}
    b_vertices = np.full((2, 3), np.nan)
    for position, hadron in enumerate(ranked[:2]):
        daughter = event[event[hadron].daughter1()]
        b_vertices[position] = daughter.xProd(), daughter.yProd(), daughter.zProd()
    from_c = np.array([ancestry.of(int(i))[1] for i in index], dtype=bool)
    from_b = np.array([min((rank[h] for h in hadrons), default=0) for hadrons in b_hadrons], dtype=np.int64)
    pdg_id = np.array([particle.id() for particle in particles], dtype=np.int64)
    return Jet(
        process=process, pt=axis[0], eta=axis[1], phi=axis[2], index=index,
        px=np.array([particle.px() for particle in particles]),
        py=np.array([particle.py() for particle in particles]),
        pz=np.array([particle.pz() for particle in particles]),
        energy=np.array([particle.e() for particle in particles]),
        charge=np.array([particle.charge() for particle in particles]),
        pdg_id=pdg_id,
        vertex=np.array([(particle.xProd(), particle.yProd(), particle.zProd()) for particle in particles]),
        from_b=from_b, from_c=from_c,
        hf_lepton=np.isin(np.abs(pdg_id), list(LEPTONS)) & ((from_b > 0) | from_c),
        b_quarks=b_quarks, b_vertices=b_vertices,
    )


class _Ancestry:
    """The heavy-flavour hadrons among the ancestors of particles of one event record, memoised per particle."""

    def __init__(self, event: Any) -> None:
        self._event = event
        self._mothers: dict[int, list[int]] = {}
        self._flavours: dict[int, int] = {}
        self._found: dict[int, tuple[frozenset[int], bool]] = {}

    def of(self, index: int) -> tuple[frozenset[int], bool]:
        """The b-hadrons among a particle's ancestors (record positions), and whether a c-hadron is among them."""
        stack = [index]
        while stack:  # depth first, each particle settled once all its mothers are
            current = stack[-1]
            if current in self._found:
                stack.pop()
                continue
            mothers = self._mothers_of(current)
            unsettled = [mother for mother in mothers if mother not in self._found]
            if unsettled:
                stack.extend(unsettled)
                continue
            stack.pop()
            b_hadrons: set[int] = set()
            charm = False
            for mother in mothers:
                above, charm_above = self._found[mother]
                flavour = self.flavour(mother)
                b_hadrons |= above | ({mother} if flavour == BOTTOM else set())
                charm = charm or charm_above or flavour == CHARM
            self._found[current] = frozenset(b_hadrons), charm
        return self._found[index]

    def last_b_hadron(self, hadron: int) -> int:
        """The last b-hadron down the chain that starts at ``hadron``: the weakly decaying one."""
        while True:
            daughters = self._event[hadron].daughterList()
            following = [daughter for daughter in daughters if self.flavour(daughter) == BOTTOM]
            if not following:
                return hadron
            hadron = following[0]

    def flavour(self, index: int) -> int:
        if index not in self._flavours:
            self._flavours[index] = hadron_flavour(self._event[index].id())
        return self._flavours[index]

    def _mothers_of(self, index: int) -> list[int]:
        if index not in self._mothers:
            self._mothers[index] = list(self._event[index].motherList())
        return self._mothers[index]
