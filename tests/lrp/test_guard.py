"""OperationGuard: what LRP may pass through, and what it refuses by name."""
import pytest
import torch
from torch import nn

from hin_captum.lrp import OperationGuard, UnsupportedModuleError


class Block(nn.Module):
    """Runs ``operation(self, x)``, so the guard reports this module by name."""

    def __init__(self, operation):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.eps = nn.Parameter(torch.tensor(0.3))
        self.operation = operation

    def forward(self, x, other):
        return self.operation(self, x, other)


class Model(nn.Module):
    def __init__(self, operation):
        super().__init__()
        self.block = Block(operation)

    def forward(self, x, other):
        return self.block(x, other)


ALLOWED = {
    "linear": lambda m, x, o: m.linear(x),
    "scale by a parameter": lambda m, x, o: (1 + m.eps) * x,
    "mask times message": lambda m, x, o: x * o,
    "relu, max, mean, concatenation": lambda m, x, o: torch.cat([x.relu().max(0).values, x.mean(0)]),
    "division by a constant": lambda m, x, o: x / 3.0,
    "gather": lambda m, x, o: x[torch.tensor([0, 0, 1])],
}
REFUSED = {
    "square": (lambda m, x, o: x * x, "'mul' multiplies two input-dependent tensors"),
    "sigmoid": (lambda m, x, o: torch.sigmoid(m.linear(x)), "'sigmoid' is not piecewise linear"),
    "tanh method": (lambda m, x, o: x.tanh(), "'tanh' is not piecewise linear"),
    "normalisation": (lambda m, x, o: x / x.abs().sum(), "divides by an input-dependent tensor"),
    "softmax": (lambda m, x, o: torch.softmax(x, -1), "'softmax' is not piecewise linear"),
    "attention": (lambda m, x, o: x @ x.T, "'matmul' multiplies two input-dependent tensors"),
}


def run(operation):
    model = Model(operation)
    x = torch.randn(3, 4, requires_grad=True)
    other = torch.rand(3, 4, requires_grad=True)  # requires grad too, but is not an explained input
    with OperationGuard(model, [x]):
        return model(x, other)


@pytest.mark.parametrize("case", ALLOWED)
def test_piecewise_linear_operations_pass(case):
    run(ALLOWED[case])


@pytest.mark.parametrize("case", REFUSED)
def test_other_operations_are_refused_naming_the_module(case):
    operation, message = REFUSED[case]

    with pytest.raises(UnsupportedModuleError) as error:
        run(operation)
    assert "block (Block)" in str(error.value) and message in str(error.value)


def test_operations_on_unwatched_tensors_pass():
    model = Model(lambda m, x, o: torch.sigmoid(o) * o)
    x = torch.randn(3, 4, requires_grad=True)
    with OperationGuard(model, [x]):
        model(x, torch.randn(3, 4, requires_grad=True))


def test_the_guard_leaves_no_hook_even_after_a_refusal():
    model = Model(REFUSED["sigmoid"][0])
    x = torch.randn(3, 4, requires_grad=True)

    with pytest.raises(UnsupportedModuleError), OperationGuard(model, [x]):
        model(x, x)

    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())
    torch.sigmoid(x)  # and no mode is left active
