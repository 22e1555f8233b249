"""Composites: which rule each affine block gets (as Zennit's composites).

A composite maps blocks to rules by name pattern (``fnmatch`` on the qualified
module names of the block) and by role: the *input* rule goes to every block that
reads an explained input directly (the engine sees which, on the pass itself,
whatever the registration order and also through a clone or cast of the input),
the *output* rule to the last block in registration order (the logits).
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Callable, Mapping

from ..util import InputError
from .canonization import AffineBlock
from .rules import DEFAULT_EPSILON, AlphaBeta, Epsilon, Flat, Gamma, Rule, WSquare, ZBox, ZPlus, parse_rule


@dataclass(frozen=True)
class Composite:
    """Rules by block: explicit name patterns first, then the input and output blocks' rules, then the hidden rule."""

    hidden: Rule = field(default_factory=Epsilon)
    output: Rule | None = None
    input: Rule | None = None
    by_name: Mapping[str, Rule] = field(default_factory=dict)

    def assign(self, blocks: list[AffineBlock], reading: Collection[AffineBlock] = ()) -> dict[AffineBlock, Rule]:
        """The rule of every block: a name pattern's, else the output rule for the last block, else the input rule
        for the blocks in ``reading`` (those that read an explained input), else the hidden rule. Every name
        pattern must match at least one block."""
        unused = set(self.by_name)
        assigned = {}
        for position, block in enumerate(blocks):
            rule = None
            for pattern, candidate in self.by_name.items():
                if any(fnmatchcase(name, pattern) for name in block.names):
                    rule = candidate
                    unused.discard(pattern)
                    break
            if rule is None and position == len(blocks) - 1:
                rule = self.output
            if rule is None and block in reading:
                rule = self.input
            assigned[block] = rule if rule is not None else self.hidden
        if unused:
            known = ", ".join(name for block in blocks for name in block.names)
            raise InputError(f"LRP rule patterns {sorted(unused)} match no layer; layers are: {known}")
        return assigned


def _layered(hidden: Callable[[float], Rule], input: Callable[[float], Rule] = Epsilon):
    """A composite maker: ``hidden`` in hidden blocks, epsilon at the output and ``input`` (epsilon) at the input."""
    def make(epsilon: float) -> Composite:
        return Composite(hidden=hidden(epsilon), output=Epsilon(epsilon), input=input(epsilon))
    return make


COMPOSITES: dict[str, Callable[[float], Composite]] = {
    "epsilon": lambda epsilon: Composite(hidden=Epsilon(epsilon)),
    "gamma": _layered(lambda e: Gamma(e)),
    "zplus": _layered(lambda e: ZPlus(e)),
    "alpha2beta1": _layered(lambda e: AlphaBeta(e)),
    "epsilon-flat": _layered(lambda e: Epsilon(e), lambda e: Flat(e)),
    "epsilon-w2": _layered(lambda e: Epsilon(e), lambda e: WSquare(e)),
    "epsilon-zbox": _layered(lambda e: Epsilon(e), lambda e: ZBox(e)),
    "gamma-zbox": _layered(lambda e: Gamma(e), lambda e: ZBox(e)),
}
"""Named composites, each with the given epsilon in every rule: epsilon everywhere; gamma, z+ or alpha2-beta1 in
hidden blocks; flat, w^2 or z^B at the blocks that read the input. Those get epsilon unless named: they see the
departure from the reference, and z+ or alpha-beta there would drop every feature below its reference value."""


def make_composite(
    composite: str | Composite | None = None,
    rules: Mapping[str, str | Rule] | None = None,
    epsilon: float = DEFAULT_EPSILON,
) -> Composite:
    """Build a composite from a name (or object), per-layer ``rules`` overrides and the epsilon."""
    if isinstance(composite, Composite):
        base = composite
    else:
        name = composite or "epsilon"
        if name not in COMPOSITES:
            raise InputError(f"unknown LRP composite '{name}': use one of {', '.join(COMPOSITES)}")
        base = COMPOSITES[name](epsilon)
    if not rules:
        return base
    overrides = {pattern: parse_rule(spec, epsilon) for pattern, spec in rules.items()}
    return Composite(hidden=base.hidden, output=base.output, input=base.input,
                     by_name={**base.by_name, **overrides})
