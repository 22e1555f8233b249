"""Composites: which rule each affine block gets (as Zennit's composites).

A composite maps blocks to rules by name pattern (``fnmatch`` on the qualified
module names of the block) and by position: the *output* block is the last
affine block in registration order, which for feed-forward heads is the layer
that produces the logits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Callable, Mapping

from ..errors import InputError
from .canonization import AffineBlock
from .rules import DEFAULT_EPSILON, Epsilon, Gamma, Rule, ZPlus, parse_rule


@dataclass(frozen=True)
class Composite:
    """Rules by block: explicit name patterns first, then the output block's rule, then the hidden rule."""

    hidden: Rule = field(default_factory=Epsilon)
    output: Rule | None = None
    by_name: Mapping[str, Rule] = field(default_factory=dict)

    def assign(self, blocks: list[AffineBlock]) -> dict[AffineBlock, Rule]:
        """The rule of every block; every name pattern must match at least one block."""
        unused = set(self.by_name)
        assigned = {}
        for position, block in enumerate(blocks):
            rule = None
            for pattern, candidate in self.by_name.items():
                if any(fnmatchcase(name, pattern) for name in block.names):
                    rule = candidate
                    unused.discard(pattern)
                    break
            if rule is None:
                is_output = position == len(blocks) - 1
                rule = self.output if is_output and self.output is not None else self.hidden
            assigned[block] = rule
        if unused:
            known = ", ".join(name for block in blocks for name in block.names)
            raise InputError(f"LRP rule patterns {sorted(unused)} match no layer; layers are: {known}")
        return assigned


COMPOSITES: dict[str, Callable[[float], Composite]] = {
    "epsilon": lambda epsilon: Composite(hidden=Epsilon(epsilon)),
    "gamma": lambda epsilon: Composite(hidden=Gamma(epsilon=epsilon), output=Epsilon(epsilon)),
    "zplus": lambda epsilon: Composite(hidden=ZPlus(epsilon=epsilon), output=Epsilon(epsilon)),
}
"""Named composites: epsilon everywhere, or gamma / z+ on hidden blocks with epsilon on the output block."""


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
    return Composite(hidden=base.hidden, output=base.output, by_name={**base.by_name, **overrides})
