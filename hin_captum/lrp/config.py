"""One LRP configuration, validated once, and the engines it builds (one per model and rules).

:class:`LRPConfig` holds every option of LRP (composite, rule overrides, epsilon,
reference point, precision); ``hin_captum.LRP``, the registry's ``lrp*`` methods and
PyG's ``LRPExplainer`` all take its fields as keyword options and build one. A
:class:`Propagator` pairs a configuration with the engine of each model: found again
by the model's identity (a weak reference) and rebuilt when the model's modules
change. Fronts with the same rules share the engine of a model (:data:`ENGINES`),
and every front shares the input norm each model's inputs meet
(:data:`~hin_captum.lrp.reference.INPUT_NORMS`): both are properties of the model and the
rules, kept weakly by the model, that would otherwise be found again (blocks, folded
weights, the operation check, an extra forward pass) on every call.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any
from weakref import WeakKeyDictionary

import torch
from torch import Tensor, nn

from ..util import InputError, refuse_unknown
from .attention import ATTENTION_RULES
from .composites import Composite, make_composite
from .engine import LRPEngine, Propagation
from .reference import REFERENCES, Reference, structure
from .rules import DEFAULT_EPSILON, Rule

PRECISIONS = ("float32", "tf32", "bfloat16")
"""Matrix products in float32 (default), in TF32 (NVIDIA GPUs since Ampere; no effect on a CPU) or in bfloat16
(autocast; the rules compute in the blocks' bfloat16 outputs)."""


@dataclass(frozen=True)
class LRPConfig:
    """Every option of LRP, checked when it is made; :attr:`rules_of_blocks` is the composite it resolves to."""

    composite: str | Composite | None = None
    """A name of :data:`~hin_captum.lrp.COMPOSITES` (default ``epsilon``) or a :class:`Composite`."""
    rules: Mapping[str, str | Rule] | None = None
    """Rule overrides by module-name pattern, e.g. ``{"bn": "pass", "*global_mlp.0": "gamma:0.5"}``."""
    epsilon: float = DEFAULT_EPSILON
    reference: Reference | Sequence[Reference] = "auto"
    """The point relevance is measured from (:mod:`hin_captum.lrp.reference`)."""
    precision: str = "float32"
    """One of :data:`PRECISIONS`."""
    attention: str = "attnlrp"
    """The rules of attention, normalisation and gates (:data:`~hin_captum.lrp.attention.ATTENTION_RULES`):
    ``attnlrp`` (AttnLRP, the default) or ``cp`` (CP-LRP: attention probabilities and gates held constant)."""
    relevance_at: tuple[str, ...] = ()
    """Modules whose input is explained too, like an input of the model (what made it is not explained): for
    example ParT's ``pair_embed.embed``, where the pair features it computes from the four-vectors enter."""
    rules_of_blocks: Composite = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.epsilon, bool) or not isinstance(self.epsilon, (int, float)) or not self.epsilon >= 0:
            raise InputError(f"epsilon must be a number >= 0, got {self.epsilon!r}")
        if self.attention not in ATTENTION_RULES:
            raise InputError(f"unknown attention rules '{self.attention}': use one of {', '.join(ATTENTION_RULES)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision '{self.precision}': use one of {', '.join(PRECISIONS)}")
        for item in self.reference if isinstance(self.reference, (list, tuple)) else [self.reference]:
            _check_reference(item)
        object.__setattr__(self, "relevance_at", tuple([self.relevance_at] if isinstance(self.relevance_at, str)
                                                       else self.relevance_at))
        object.__setattr__(self, "rules_of_blocks", make_composite(self.composite, self.rules, float(self.epsilon)))

    def engine_key(self) -> tuple:
        """What an engine depends on, as a hashable value: the rules of the blocks (compared by value), epsilon, the
        attention rules and ``relevance_at`` (not the reference point or the precision, which each pass takes)."""
        composite = self.rules_of_blocks
        return (composite.hidden, composite.output, composite.input, tuple(sorted(composite.by_name.items())),
                float(self.epsilon), self.attention, self.relevance_at)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options a front passes on to the configuration."""
        return tuple(item.name for item in fields(cls) if item.init)

    @classmethod
    def of(cls, options: Mapping[str, Any], front: str) -> "LRPConfig":
        """The configuration from a front's keyword options; an unknown option is refused in one line."""
        refuse_unknown(options, cls.option_names(), f"{front} option")
        return cls(**options)


def _check_reference(spec: object) -> None:
    if isinstance(spec, Tensor) or (isinstance(spec, (int, float)) and not isinstance(spec, bool)):
        return
    if isinstance(spec, str) and spec.strip().lower() in REFERENCES:
        return
    raise InputError(f"unknown reference {spec!r}: use {', '.join(REFERENCES)}, a number or a tensor "
                     "(for example hin_captum.lrp.track_mean(jets))")


class Propagator:
    """A configuration and the engine of each model it explains: ``propagate`` runs one LRP pass of any model under
    the configuration.

    Engines live in :data:`ENGINES`: one per model and engine-relevant configuration
    (:meth:`LRPConfig.engine_key`), kept weakly by the model's identity and rebuilt
    when the model's modules change, so a front made per call (``hin_captum.attribute``)
    finds the engine, its folded weights and its operation check of an earlier call
    with the same rules instead of building them again.
    """

    def __init__(self, config: LRPConfig) -> None:
        self.config = config

    def engine(self, model: nn.Module) -> LRPEngine:
        """The engine of ``model`` under this configuration (the one place engines are built)."""
        key, built = structure(model), ENGINES.setdefault(model, {})
        kept = built.get(self.config.engine_key())
        if kept is None or kept[0] != key:
            kept = (key, LRPEngine(model, self.config))
            built[self.config.engine_key()] = kept
        return kept[1]
    def propagate(
        self,
        model: nn.Module,
        inputs: Sequence[Tensor],
        run: Callable[[tuple[Tensor, ...]], Tensor],
        select: Callable[[Tensor], Tensor],
        edge_index: Tensor | None = None,
        track_conservation: bool = False,
        reference: Reference | Sequence[Reference] | None = None,
    ) -> Propagation:
        """One LRP pass: ``run(inputs)`` forward, then the rules backward from the scalar ``select(output)``.

        ``reference`` overrides the configuration's for this pass. The matrix products
        run in the configured precision, and torch's settings are as before afterwards.
        """
        with reduced_precision(self.config.precision, inputs[0].device):
            return self.engine(model).propagate(
                inputs, run, select, reference=self.config.reference if reference is None else reference,
                edge_index=edge_index, track_conservation=track_conservation)


ENGINES: "WeakKeyDictionary[nn.Module, dict[tuple, tuple[tuple, LRPEngine]]]" = WeakKeyDictionary()
"""The engines of every model explained in this process, by the engine-relevant part of their configuration; kept
weakly by the model, checked against its modules' structure."""


@contextmanager
def reduced_precision(precision: str, device: torch.device) -> Iterator[None]:
    """The matrix products of the block in ``precision``; torch's precision settings come back afterwards,
    also when the block raises."""
    if precision == "bfloat16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
        return
    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    if precision == "tf32":
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = cudnn
