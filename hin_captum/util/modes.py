"""Run a model in eval mode without losing the mode each of its modules was in."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; every submodule's own mode is restored afterwards.

    Explanations need eval mode: a BatchNorm in training mode normalises with the
    batch's statistics (so one jet's relevance would depend on the others) and
    updates its running statistics even without gradients.
    """
    training = [module for module in model.modules() if module.training]
    for module in training:
        module.training = False
    try:
        yield model
    finally:
        for module in training:
            module.training = True
