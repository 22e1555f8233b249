"""``prototype()``: real jets moved, with the same tracks and graph, until the model is sure of the target class.

Naive activation maximisation leaves the data (negative pT, flags of 0.37). Here every
step stays on the manifold of real tracks (:class:`~hin_captum.prototypes.manifold.TrackManifold`):
features are clamped to the real range (columns equal on every real track kept equal), a
penalty keeps each jet near its starting jet in units of each feature's spread, and discrete
features are put on real values before the last steps, which move the continuous features
only. A density of the real target-class jets' statistics can be added (``density``); the
README's table measures each of these.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from tqdm import tqdm

from ..config import load_config
from ..methods import Explanation, attribute
from ..methods.explanation import as_batch
from ..models.tagger import Tagger, as_tagger
from ..util.modes import eval_mode
from ..util import InputError, refuse_unknown
from .manifold import JetDensity, TrackManifold


@dataclass
class Prototypes:
    """What :func:`prototype` gives: the prototype jets, their target probabilities, the jets they started from
    and the LRP explanation of the prototypes."""

    jets: Batch
    scores: Tensor
    """p(target) of each prototype [n]."""
    start: Batch
    start_scores: Tensor
    explanation: Explanation
    manifold: TrackManifold


def prototype(model: nn.Module | Tagger, jets: Data | Batch | list[Data], target: int = 1, n: int = 100,
              seed: int = 0, start: Data | Batch | list[Data] | None = None, device: str | torch.device | None = None,
              progress: bool = False, **options: Any) -> Prototypes:
    """``n`` prototypes of class ``target`` for a tagger (or a graph model ``model(x, edge_index, ...) -> [G, C]``).

    Each starts from a real jet (``start``, or by default the ``n`` jets of ``jets`` the model
    scores lowest for ``target``) and keeps its tracks and graph; ``jets`` define the manifold.
    ``options`` replace those of ``configs/prototype.yml`` (``steps``, ``learning_rate``, ``penalty``, ...);
    all prototypes are optimised together on ``device`` (default: that of the model's parameters), where the
    model must be; ``progress`` shows a bar over the steps.
    """
    defaults = load_config("prototype")["optimisation"]
    refuse_unknown(options, defaults, "prototype option")
    config = {**defaults, **options}
    tagger = as_tagger(model)
    model = tagger.network
    device = torch.device(device) if device is not None else next(model.parameters(), torch.empty(0)).device
    data = _batch(jets).to(device)
    manifold = TrackManifold.of_tracks(data.x, tuple(config["quantiles"]), int(config["discrete_levels"]))
    with eval_mode(model), torch.no_grad():
        probabilities = torch.softmax(tagger.logits(data.x, data), -1)
    if not 0 <= target < probabilities.shape[1]:
        raise InputError(f"target {target} is not a class of a model with {probabilities.shape[1]} outputs")
    density = _density(data, probabilities.argmax(1) == target, config) if float(config["density"]) > 0 else None
    if start is None:
        if n > data.num_graphs:
            raise InputError(f"{n} prototypes need at least {n} jets to start from, got {data.num_graphs}")
        chosen = torch.argsort(probabilities[:, target])[:n].sort().values
        begin = Batch.from_data_list([data.get_example(int(index)) for index in chosen])
    else:
        begin = _batch(start).to(device)
    generator = torch.Generator().manual_seed(seed)
    with _deterministic():
        moved = _optimise(tagger, begin, target, manifold, density, config, generator, progress)
    jets_out = begin.clone()
    jets_out.x = moved
    with eval_mode(model), torch.no_grad():
        scores = torch.softmax(tagger.logits(moved, begin), -1)[:, target]
        start_scores = torch.softmax(tagger.logits(begin.x, begin), -1)[:, target]
    return Prototypes(jets_out, scores, begin, start_scores, attribute(tagger, jets_out, "lrp", target), manifold)


@contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic kernels for the call only: the scatters of message passing add in a varying order on several
    threads, and 200 steps of Adam grow that rounding into different prototypes (1e-4 apart); restored after."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _density(data: Batch, assigned: Tensor, config: dict[str, Any]) -> JetDensity:
    """The density of the jets the model assigns to the target class."""
    reference = Batch.from_data_list([data.get_example(int(index)) for index in torch.nonzero(assigned).flatten()])
    return JetDensity.of_jets(reference.x, reference.batch, reference.num_graphs, float(config["shrinkage"]))


def _batch(jets: Data | Batch | list[Data]) -> Batch:
    return Batch.from_data_list(list(jets)) if isinstance(jets, (list, tuple)) else as_batch(jets)


def _optimise(tagger: Tagger, begin: Batch, target: int, manifold: TrackManifold, density: JetDensity | None,
              config: dict[str, Any], generator: torch.Generator, progress: bool = False) -> Tensor:
    """The starting jets' track features moved to raise log p(target), on the manifold."""
    spread = manifold.spread.to(begin.x)
    origin = manifold.clamp(begin.x.detach())
    shift = (1e-3 * torch.randn(origin.shape, generator=generator)).to(origin).requires_grad_(True)
    optimiser = torch.optim.Adam([shift], lr=float(config["learning_rate"]))
    steps, refine = int(config["steps"]), int(config["refine_steps"])
    discrete = manifold.discrete.to(origin.device).expand_as(origin)
    snapped: Tensor | None = None
    tracks = torch.bincount(begin.batch, minlength=begin.num_graphs).clamp_min(1).to(origin)
    with eval_mode(tagger.network):
        for step in tqdm(range(steps + refine), desc="prototypes", unit="step", disable=not progress, leave=False):
            if step == steps:  # discrete features onto real values; from here only the continuous ones move
                with torch.no_grad():
                    snapped = manifold.snap(manifold.clamp(origin + spread * shift))
            x = manifold.clamp(origin + spread * shift)
            if snapped is not None:
                x = torch.where(discrete, snapped, x)
            log_p = torch.log_softmax(tagger.logits(x, begin), -1)[:, target]
            distance = torch.zeros_like(log_p).index_add_(0, begin.batch, (shift ** 2).mean(1)) / tracks
            loss = -log_p + float(config["penalty"]) * distance
            if density is not None:
                loss = loss + float(config["density"]) * density.energy(x, begin.batch, begin.num_graphs)
            loss = loss.sum()
            (shift.grad,) = torch.autograd.grad(loss, [shift])  # the model's own gradients stay untouched
            optimiser.step()
    with torch.no_grad():
        final = manifold.clamp(origin + spread * shift)
        return manifold.snap(final) if snapped is None else torch.where(discrete, snapped, final)
