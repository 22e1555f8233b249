"""OperationRules: what passes with its true gradient, what gets a rule, and what is refused by name (when relevance
would flow through it)."""
import pytest
import torch
from torch import nn

from hin_captum.lrp import LRP, OperationRules, UnsupportedModuleError


class Block(nn.Module):
    """Runs ``operation(self, x)``, so the refusals name this module."""

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
    "square that only feeds topk": lambda m, x, o: x[(x * x).sum(1).topk(2).indices],
    "softmax": lambda m, x, o: torch.softmax(x, -1),
    "sigmoid gate": lambda m, x, o: torch.sigmoid(m.linear(x)) * x,
    "attention": lambda m, x, o: torch.softmax(x @ x.T, -1) @ x,
}
REFUSED = {
    "exp": (lambda m, x, o: x.exp(), "'exp' has no LRP rule"),
    "normalisation": (lambda m, x, o: x / x.abs().sum(), "divides by an input-dependent tensor"),
    "square root": (lambda m, x, o: (x * x).sqrt(), "'sqrt' has no LRP rule"),
    "log_softmax": (lambda m, x, o: torch.log_softmax(x, -1), "'log_softmax' has no LRP rule"),
    "in-place sigmoid": (lambda m, x, o: m.linear(x).sigmoid_(), "'sigmoid_' changes an input-dependent tensor"),
}


def run(operation):
    """A forward pass under the rules, then a backward pass from the sum of the output."""
    model = Model(operation)
    x = torch.randn(3, 4, requires_grad=True)
    other = torch.rand(3, 4, requires_grad=True)  # requires grad too, but is not an explained input
    with OperationRules(model, [x]):
        out = model(x, other)
    return torch.autograd.grad(out.sum(), x, allow_unused=True)


@pytest.mark.parametrize("case", ALLOWED)
def test_operations_with_a_rule_or_with_no_relevance_pass(case):
    run(ALLOWED[case])


@pytest.mark.parametrize("case", REFUSED)
def test_other_operations_are_refused_naming_the_module(case):
    operation, message = REFUSED[case]

    with pytest.raises(UnsupportedModuleError) as error:
        run(operation)
    assert "block (Block)" in str(error.value) and message in str(error.value)


def test_operations_on_unwatched_tensors_pass():
    model = Model(lambda m, x, o: torch.exp(o) * x)
    x = torch.randn(3, 4, requires_grad=True)
    with OperationRules(model, [x]):
        out = model(x, torch.randn(3, 4, requires_grad=True))
    torch.autograd.grad(out.sum(), x)


def test_the_rules_leave_no_hook_even_after_a_refusal():
    model = Model(REFUSED["in-place sigmoid"][0])
    x = torch.randn(3, 4, requires_grad=True)

    with pytest.raises(UnsupportedModuleError), OperationRules(model, [x]):
        model(x, x)

    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())
    assert torch.exp(x).grad_fn.__class__.__name__ == "ExpBackward0"  # and no mode is left active


def test_a_model_with_only_piecewise_linear_operations_skips_the_rules_after_its_first_pass():
    relu = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    gelu = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 2))
    for model, needed in ((relu, False), (gelu, True)):
        lrp = LRP(model)
        lrp.attribute(torch.randn(3, 4), target=0)
        assert lrp.propagator.engine(model).needs_operation_rules is needed
