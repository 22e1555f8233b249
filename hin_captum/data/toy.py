"""TOY H->bb and QCD jets, written as ROOT files in the schema of the CMS Open Data H->bb ntuples.

These are toys, not a simulation: they give every branch a plausible value so the
reader, the model and the scripts run end to end on real ROOT files. The knobs live
in ``configs/toy_data.yml``. What the toys model:

* Jets: a falling pt spectrum; H->bb jets have a soft-drop mass around 125 GeV,
  QCD jets a falling mass spectrum and a flavour label (mostly light, some b/bb/c/cc).
* Two prongs per jet, separated by ``mass / (pt sqrt(z (1 - z)))``; tracks
  gather around the prong axes, tighter the harder they are, plus a wide component.
* Long-lived hadrons: two b hadrons in H->bb jets, b or c hadrons in heavy-flavour
  QCD jets. Their decay tracks have large, mostly positive lifetime-signed impact
  parameters (trackBTag_Sip*, track_dxy/dz and their significances), are less tied
  to the primary vertex, and may hold a soft muon or electron. Prompt tracks carry
  resolution-sized impact parameters with a small mismeasured tail.
* Everything else follows from these: momenta and their projections on the jet axis,
  distances to the subjets and to secondary vertices, and the track covariance entries.
* Conventions of the real ntuples: some b-tagging branches are clipped to fixed ranges
  (e.g. trackBTag_Sip3dSig >= -1), track_drminsv is minus the distance, and
  track_normchi2 is floored.

Per-track branches are ``float[]`` sharing one counter branch (``track_counter`` in
``configs/definitions.yml``), in the TTree ``tree`` of ``configs/definitions.yml``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from ..config import load_config
from ..util import InputError
from .schema import CMS_HBB

PION_MASS, MUON_MASS, ELECTRON_MASS = 0.13957, 0.10566, 0.000511  # GeV
Config = Mapping[str, Any]
Arrays = Mapping[str, np.ndarray]
MIN_ANGLE = 1e-3  # rad: keeps the pseudorapidity relative to the jet axis finite for tracks on the axis
# Long-lived hadron in the (harder, softer) prong of each kind of jet; "" for none.
PRONG_HADRONS = {
    "hbb": ("b", "b"),
    "bb": ("b", "b"),
    "b": ("b", ""),
    "cc": ("c", "c"),
    "c": ("c", ""),
    "others": ("", ""),
}


def make_toy_jets(n_jets: int, seed: int, signal_fraction: float | None = None, config: Config | None = None
                  ) -> ak.Array:
    """``n_jets`` toy jets as one awkward record array: what :func:`write_toy_root` writes.

    Fields: ``tracks`` (per jet, a list of records of the 45 track branches), the label
    branches and the spectators. Deterministic in ``seed``. ``config`` replaces
    ``configs/toy_data.yml`` (for example with more tracks per jet).
    """
    return ak.concatenate(list(_toy_chunks(n_jets, seed, signal_fraction, config)))


def write_toy_root(path: str | os.PathLike, n_jets: int, seed: int, signal_fraction: float | None = None,
                   config: Config | None = None) -> Path:
    """Write ``n_jets`` toy jets to a ROOT file at ``path``, chunk by chunk; return the path.

    ``signal_fraction`` is the H->bb share (default from ``config``, by default ``configs/toy_data.yml``).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"no such folder: {path.parent}: create it or write elsewhere")
    chunks = _toy_chunks(n_jets, seed, signal_fraction, config)
    with uproot.recreate(path) as file:
        tree = None
        for chunk in chunks:
            branches = {name: chunk[name] for name in chunk.fields}
            if tree is None:
                tree = file.mktree(
                    CMS_HBB.tree,
                    {name: array.type for name, array in branches.items()},
                    counter_name=lambda _: CMS_HBB.track_counter,
                    field_name=lambda _, inner: inner,
                )
            tree.extend(branches)
    return path


def _toy_chunks(n_jets: int, seed: int, signal_fraction: float | None, config: Config | None
                ) -> Iterator[ak.Array]:
    """The toy jets in chunks of ``chunk_size``, all drawn from one generator seeded with ``seed``.

    The arguments are checked here, before any file is touched.
    """
    config = load_config("toy_data") if config is None else config
    if signal_fraction is None:
        signal_fraction = config["signal_fraction"]
    if not isinstance(n_jets, (int, np.integer)) or n_jets < 1:
        raise InputError(f"the number of jets must be a positive integer, got {n_jets!r}")
    if not 0.0 <= signal_fraction <= 1.0:
        raise InputError(f"the signal fraction must lie in [0, 1], got {signal_fraction}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"the seed must be a non-negative integer, got {seed!r}")
    flavour_labels = _flavour_labels(config)
    rng = np.random.default_rng(seed)
    sizes = [min(config["chunk_size"], n_jets - start) for start in range(0, n_jets, config["chunk_size"])]
    return (_generate(rng, size, signal_fraction, flavour_labels, config) for size in sizes)


def _generate(
    rng: np.random.Generator, n_jets: int, signal_fraction: float, flavour_labels: Mapping[str, str],
    config: Config,
) -> ak.Array:
    jets = _jets(rng, n_jets, signal_fraction, config)
    tracks = _tracks(rng, jets, config)
    labels = CMS_HBB.labels
    kind = jets["kind"]
    columns = {
        labels["qcd_sample"][0]: kind != "hbb",
        **{branch: kind == flavour for branch, flavour in flavour_labels.items()},
        labels["hbb"][0]: kind == "hbb",
    }
    record = {
        "tracks": ak.unflatten(ak.zip(tracks, depth_limit=1), jets["counts"]),
        **{name: value.astype(np.int32) for name, value in columns.items()},
        "fj_pt": jets["pt"].astype(np.float32),
        "fj_sdmass": jets["mass"].astype(np.float32),
    }
    return ak.zip(record, depth_limit=1)


def _flavour_labels(config: Config) -> dict[str, str]:
    """QCD flavour label branch -> flavour name in ``configs/toy_data.yml`` (label_QCD_bb -> bb)."""
    branches = {branch: branch.removeprefix("label_QCD_") for branch in CMS_HBB.labels["qcd_flavours"]}
    if set(branches.values()) != set(config["qcd"]["flavours"]):
        raise InputError(
            f"qcd.flavours in configs/toy_data.yml must name exactly the flavours {', '.join(branches.values())}"
        )
    return branches


def _jets(rng: np.random.Generator, n: int, signal_fraction: float, config: Config) -> dict[str, np.ndarray]:
    """Per-jet quantities: kind, kinematics, prong axes, hadrons and track counts."""
    jet, tracks = config["jet"], config["tracks"]
    flavours = config["qcd"]["flavours"]
    is_hbb = rng.random(n) < signal_fraction
    flavour = rng.choice(list(flavours), size=n, p=list(flavours.values()))
    kind = np.where(is_hbb, "hbb", flavour)

    pt = np.minimum(jet["pt_min"] + rng.exponential(jet["pt_slope"], n), jet["pt_max"])
    qcd_mass = config["qcd"]["mass_min"] + rng.exponential(config["qcd"]["mass_slope"], n)
    mass = np.where(is_hbb, rng.normal(config["hbb"]["mass_mean"], config["hbb"]["mass_sigma"], n), qcd_mass)
    mass = np.maximum(mass, config["qcd"]["mass_min"])
    z = np.where(is_hbb, rng.uniform(*config["hbb"]["z_range"], n), rng.uniform(*config["qcd"]["z_range"], n))
    separation = np.minimum(mass / (pt * np.sqrt(z * (1 - z))), jet["radius"])
    # The harder prong sits at z * separation from the jet axis, the softer one opposite.
    direction = rng.uniform(0, 2 * np.pi, n)
    unit = np.stack([np.cos(direction), np.sin(direction)], axis=1)
    axes = np.stack([-(z * separation)[:, None] * unit, ((1 - z) * separation)[:, None] * unit], axis=1)

    count_mean = np.where(is_hbb, tracks["count_mean"]["hbb"], tracks["count_mean"]["qcd"])
    counts = np.clip(np.rint(rng.normal(count_mean, tracks["count_sd"])), tracks["count_min"], tracks["count_max"])
    hadrons = _lookup(kind, PRONG_HADRONS)
    return {
        "kind": kind,
        "pt": pt,
        "eta": rng.uniform(-jet["eta_max"], jet["eta_max"], n),
        "mass": mass,
        "z": z,
        "axes": axes,  # [jet, prong, (eta, phi)] relative to the jet axis
        "hadrons": hadrons,  # [jet, prong]: "b", "c" or ""
        "counts": counts.astype(np.int64),
    }


def _tracks(rng: np.random.Generator, jets: Arrays, config: Config) -> dict[str, np.ndarray]:
    """The 45 per-track branches, as flat float32 arrays over all tracks of the chunk."""
    track_config, resolution = config["tracks"], config["resolution"]
    counts = jets["counts"]
    jet = np.repeat(np.arange(len(counts)), counts)
    n = len(jet)

    # Momentum shares of one jet's tracks follow normalised gamma draws.
    share = rng.gamma(track_config["pt_fraction_shape"], size=n)
    share /= np.bincount(jet, weights=share)[jet]
    charged_pt = rng.uniform(*config["jet"]["charged_fraction"], len(counts)) * jets["pt"]
    pt = np.maximum(share * charged_pt[jet], track_config["pt_min"])

    # Prong 0 holds the wide tracks; prongs 1 and 2 are the harder and the softer prong.
    wide = rng.random(n) < track_config["wide_fraction"]
    prong = np.where(wide, 0, np.where(rng.random(n) < jets["z"][jet], 2, 1))
    decay, flight, hadron = _decay_tracks(rng, jet, prong, jets, config)

    deta, dphi = _directions(rng, jet, prong, pt, jets, config)
    delta_r = np.hypot(deta, dphi)
    subjet_distance = [np.hypot(deta - jets["axes"][jet, p, 0], dphi - jets["axes"][jet, p, 1]) for p in (0, 1)]
    drminsv = _distance_to_vertices(rng, jet, prong, decay, subjet_distance, len(counts), config)

    sigma_dxy = resolution["dxy_base"] + resolution["dxy_per_gev"] / pt
    sigma_dz = resolution["dz_over_dxy"] * sigma_dxy
    dxy, dz, lifetime_sign = _impact_parameters(rng, decay, flight, hadron, sigma_dxy, sigma_dz, config)
    sigma_angle = resolution["angle_base"] + resolution["angle_per_gev"] / pt
    sigma_phi = sigma_angle * rng.uniform(*resolution["phi_over_eta"], n)

    is_mu, is_el = _soft_leptons(rng, jet, pt, decay, jets, config)
    mass = np.select([is_mu, is_el], [MUON_MASS, ELECTRON_MASS], PION_MASS)
    eta = jets["eta"][jet] + deta
    momentum = pt * np.cosh(eta)
    # The ntuples' "pt" covariance entry is that of q/p: sigma(q/p) = (sigma_p / p) / p.
    sigma_inverse_momentum = (resolution["pt_base"] + resolution["pt_per_gev"] * pt) / momentum
    jet_energy = np.hypot(jets["pt"] * np.cosh(jets["eta"]), jets["mass"])
    categories = {
        name: np.where(decay, _categorical(rng, spec["decay"], n), _categorical(rng, spec["prompt"], n))
        for name, spec in config["categories"].items()
    }
    shape = config["normchi2_shape"]

    def correlation(key: str) -> np.ndarray:
        return rng.uniform(*resolution[key], n)

    columns = {
        "track_pt": pt,
        "track_ptrel": pt / jets["pt"][jet],
        "trackBTag_Eta": eta,
        "trackBTag_DeltaR": delta_r,
        "trackBTag_EtaRel": -np.log(np.tan(np.maximum(delta_r, MIN_ANGLE) / 2)),
        "trackBTag_JetDistVal": -np.abs(rng.normal(0.0, sigma_dxy)),
        "trackBTag_Momentum": momentum,
        "trackBTag_PPar": momentum * np.cos(delta_r),
        "trackBTag_PParRatio": np.cos(delta_r),
        "trackBTag_PtRatio": np.sin(delta_r),
        "trackBTag_PtRel": momentum * np.sin(delta_r),
        "trackBTag_Sip2dSig": lifetime_sign * np.abs(dxy) / sigma_dxy,
        "trackBTag_Sip2dVal": lifetime_sign * np.abs(dxy),
        "trackBTag_Sip3dSig": lifetime_sign * np.hypot(dxy, dz) / np.hypot(sigma_dxy, sigma_dz),
        "trackBTag_Sip3dVal": lifetime_sign * np.hypot(dxy, dz),
        "track_charge": rng.choice([-1.0, 1.0], n),
        "track_deltaR": delta_r,
        "track_detadeta": sigma_angle**2,
        "track_dlambdadz": correlation("correlation_lambda_dz") * sigma_angle * sigma_dz,
        "track_dphidphi": sigma_phi**2,
        "track_dphidxy": correlation("correlation_phi_dxy") * sigma_phi * sigma_dxy,
        "track_dptdpt": sigma_inverse_momentum**2,
        "track_drminsv": drminsv,
        "track_drsubjet1": subjet_distance[0],
        "track_drsubjet2": subjet_distance[1],
        "track_dxy": dxy,
        "track_dxydxy": sigma_dxy**2,
        "track_dxydz": correlation("correlation_dxy_dz") * sigma_dxy * sigma_dz,
        "track_dxysig": dxy / sigma_dxy,
        "track_dz": dz,
        "track_dzdz": sigma_dz**2,
        "track_dzsig": dz / sigma_dz,
        "track_erel": np.hypot(momentum, mass) / jet_energy[jet],
        "track_etarel": deta,
        "track_isChargedHad": ~(is_mu | is_el),
        "track_isEl": is_el,
        "track_isMu": is_mu,
        "track_mass": mass,
        "track_normchi2": np.floor(rng.gamma(shape, 1.0 / shape, n)),
        "track_phirel": dphi,
        "track_puppiw": categories["track_fromPV"] > 0,  # charged PUPPI: 1 for tracks from the PV
        **categories,
    }
    for name, (low, high) in config["bounds"].items():
        columns[name] = np.clip(columns[name], low, high)
    # Branches in the order of configs/definitions.yml; a branch missing here fails loudly.
    return {name: np.asarray(columns[name], dtype=np.float32) for name in dict.fromkeys(CMS_HBB.features)}


def _decay_tracks(
    rng: np.random.Generator, jet: np.ndarray, prong: np.ndarray, jets: Arrays, config: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which tracks come from a hadron decay, the hadron's flight factor and the hadron kind ("b", "c", "")."""
    decays = config["decays"]
    n_jets = len(jets["counts"])
    hadrons = jets["hadrons"]
    n_decay = rng.poisson(_lookup(hadrons, {"": 0.0, **decays["multiplicity"]}))  # [jet, prong]
    flight = rng.exponential(1.0, (n_jets, 2))

    # The first n_decay tracks of a prong (they come in random order) are its decay tracks.
    group = jet * 3 + prong
    order = np.argsort(group, kind="stable")
    rank = np.empty(len(group), dtype=np.int64)
    rank[order] = np.arange(len(group)) - np.searchsorted(group[order], group[order])
    index = np.maximum(prong - 1, 0)
    decay = (prong > 0) & (rank < n_decay[jet, index])
    hadron = np.where(decay, hadrons[jet, index], "")
    return decay, flight[jet, index], hadron


def _directions(
    rng: np.random.Generator, jet: np.ndarray, prong: np.ndarray, pt: np.ndarray,
    jets: Arrays, config: Config,
) -> tuple[np.ndarray, np.ndarray]:
    """Track (eta, phi) relative to the jet axis: around the prong axes, or anywhere in the cone."""
    radius, n = config["jet"]["radius"], len(jet)
    spread = config["tracks"]["collimation"] / np.sqrt(pt)
    axis = jets["axes"][jet, np.maximum(prong - 1, 0)]
    near = axis + rng.normal(0.0, 1.0, (n, 2)) * spread[:, None]
    angle = rng.uniform(0, 2 * np.pi, n)
    distance = radius * np.sqrt(rng.random(n))  # uniform over the cone's area
    wide = np.stack([distance * np.cos(angle), distance * np.sin(angle)], axis=1)
    position = np.where((prong == 0)[:, None], wide, near)
    # Tracks outside the cone are not part of the jet: pull them onto its edge.
    outside = np.hypot(position[:, 0], position[:, 1]) / radius
    position /= np.maximum(outside, 1.0)[:, None]
    return position[:, 0], position[:, 1]


def _distance_to_vertices(
    rng: np.random.Generator, jet: np.ndarray, prong: np.ndarray, decay: np.ndarray,
    subjet_distance: list[np.ndarray], n_jets: int, config: Config,
) -> np.ndarray:
    """Minus the Delta R to the nearest secondary vertex (at most the jet radius), as the ntuples
    store it; vertices sit on the prong axes. Tracks of jets without a vertex get minus the radius."""
    decays = config["decays"]
    found = np.stack(
        [np.bincount(jet[decay & (prong == p)], minlength=n_jets) >= decays["sv_min_tracks"] for p in (1, 2)], axis=1
    )
    fake = ~found.any(axis=1) & (rng.random(n_jets) < decays["fake_sv_probability"])
    found[:, 0] |= fake
    distance = np.where(found[jet], np.stack(subjet_distance, axis=1), np.inf).min(axis=1)
    return -np.minimum(distance, config["jet"]["radius"])


def _impact_parameters(
    rng: np.random.Generator, decay: np.ndarray, flight: np.ndarray, hadron: np.ndarray,
    sigma_dxy: np.ndarray, sigma_dz: np.ndarray, config: Config,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed transverse and longitudinal impact parameters, and the lifetime sign of each track."""
    resolution, decays = config["resolution"], config["decays"]
    n = len(decay)
    tail = np.where(rng.random(n) < resolution["tail_fraction"], resolution["tail_scale"], 1.0)
    scale = _lookup(hadron, {"": 0.0, **decays["ip_scale"]}) * flight
    sign = rng.choice([-1.0, 1.0], (2, n))
    dxy = np.where(decay, sign[0] * scale * rng.exponential(1.0, n), 0.0) + rng.normal(0.0, sigma_dxy * tail)
    dz = np.where(decay, sign[1] * scale * rng.exponential(1.0, n), 0.0) + rng.normal(0.0, sigma_dz * tail)
    positive = rng.random(n) < np.where(decay, decays["lifetime_sign_purity"], 0.5)
    return dxy, dz, np.where(positive, 1.0, -1.0)


def _soft_leptons(
    rng: np.random.Generator, jet: np.ndarray, pt: np.ndarray, decay: np.ndarray,
    jets: Arrays, config: Config,
) -> tuple[np.ndarray, np.ndarray]:
    """Muon and electron flags: in some jets the hardest decay track (else the hardest track) is a lepton."""
    n_jets = len(jets["counts"])
    probability = _lookup(jets["kind"], config["soft_lepton_probability"])
    has_lepton = rng.random(n_jets) < probability
    is_muon = rng.random(n_jets) < config["muon_share"]
    order = np.lexsort((-pt, ~decay, jet))  # per jet: decay tracks first, then by falling pt
    first = order[np.cumsum(jets["counts"]) - jets["counts"]]
    lepton = np.zeros(len(jet), dtype=bool)
    lepton[first[has_lepton]] = True
    return lepton & is_muon[jet], lepton & ~is_muon[jet]


def _lookup(keys: np.ndarray, table: Mapping[str, Any]) -> np.ndarray:
    """``table[key]`` for every element of ``keys``, looking each distinct key up once."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    values = np.array([table[key] for key in distinct])
    return values[inverse.reshape(keys.shape)]


def _categorical(rng: np.random.Generator, probabilities: Mapping[int, float], n: int) -> np.ndarray:
    return rng.choice(list(probabilities), size=n, p=list(probabilities.values()))
