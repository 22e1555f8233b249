"""Every rule on random MLPs against the explicit float64 relevance matrices."""
import numpy as np
import pytest
import torch
from torch import nn

from hin_captum.errors import InputError
from hin_captum.lrp import LRP, Epsilon, Gamma, Pass, ZPlus, parse_rule
from hin_captum.lrp.composites import Composite
from tests.factories import randomize_norms
from tests.lrp.reference import affine_relevance, folded, numpy


def random_mlp(seed: int) -> nn.Sequential:
    """BN (alone), Linear+BN, ReLU, Linear, ReLU, Linear: every kind of affine block."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.BatchNorm1d(6), nn.Linear(6, 9), nn.BatchNorm1d(9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 3)
    )
    randomize_norms(model, torch.Generator().manual_seed(seed))
    return model.double().eval()


def reference_mlp_relevance(model, x, target, rules):
    """Forward in float64, then each block's rule from the output down, with explicit matrices."""
    blocks = [folded(None, model[0]), folded(model[1], model[2]), folded(model[4], None), folded(model[6], None)]
    activations = [numpy(x)]
    for index, (weight, bias) in enumerate(blocks):
        z = activations[-1] @ weight.T + bias
        activations.append(np.maximum(z, 0) if index in (1, 2) else z)
    relevance = np.zeros_like(activations[-1])
    rows = np.arange(len(relevance))
    relevance[rows, target] = activations[-1][rows, target]
    for index in reversed(range(len(blocks))):
        name, options = rules[index]
        relevance = affine_relevance(activations[index], *blocks[index], relevance, rule=name, **options)
    return relevance


RULE_SETS = {
    "epsilon": [("epsilon", {"epsilon": 0.1})] * 4,
    "gamma": [("pass", {"epsilon": 1e-9}), ("gamma", {"epsilon": 1e-6, "gamma": 0.5}),
              ("gamma", {"epsilon": 1e-6, "gamma": 0.5}), ("epsilon", {"epsilon": 1e-6})],
    "zplus": [("epsilon", {"epsilon": 0.05}), ("zplus", {"epsilon": 1e-6}),
              ("zplus", {"epsilon": 1e-6}), ("epsilon", {"epsilon": 1e-6})],
}


def as_rule(name, options):
    return {"epsilon": Epsilon, "gamma": Gamma, "zplus": ZPlus, "pass": Pass}[name](**options)


@pytest.mark.parametrize("rule_set", sorted(RULE_SETS))
def test_mlp_relevance_matches_the_reference(rule_set):
    model = random_mlp(seed=11)
    names = ["0", "1", "4", "6"]
    rules = {name: as_rule(*spec) for name, spec in zip(names, RULE_SETS[rule_set])}
    x = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([0, 1, 2, 1, 0])

    relevance = LRP(model, composite=Composite(by_name=rules)).attribute(x, target=target)

    expected = reference_mlp_relevance(model, x, target.numpy(), RULE_SETS[rule_set])
    np.testing.assert_allclose(relevance.detach().numpy(), expected, rtol=1e-6, atol=1e-12)
    assert np.abs(expected).sum() > 1e-3


def test_the_forward_value_is_never_changed():
    model = random_mlp(seed=2)
    x = torch.randn(4, 6, dtype=torch.float64)
    lrp = LRP(model, composite=Composite(hidden=Gamma(gamma=1.0), by_name={"0": Pass()}))
    hooks = lrp.hooks()
    lrp.attribute(x, target=0, hooks=hooks)
    assert torch.equal(hooks.output, model(x))


def test_pass_refuses_a_layer_that_changes_size():
    model = random_mlp(seed=2)
    lrp = LRP(model, rules={"4": "pass"})
    with pytest.raises(InputError, match="rule 'pass' needs equal input and output sizes.*4"):
        lrp.attribute(torch.randn(3, 6, dtype=torch.float64), target=0)


@pytest.mark.parametrize(
    "text, expected",
    [("epsilon", Epsilon(0.5)), ("epsilon:1e-3", Epsilon(1e-3)), ("gamma", Gamma(0.5)),
     ("gamma:2", Gamma(0.5, gamma=2.0)), ("zplus", ZPlus(0.5)), ("Pass", Pass(0.5))],
)
def test_rules_parse_from_text(text, expected):
    assert parse_rule(text, epsilon=0.5) == expected


@pytest.mark.parametrize("text, message", [("flat", "unknown LRP rule"), ("gamma:x", "needs a number"),
                                           ("zplus:1", "takes no argument"), ("epsilon:-1", "epsilon must be >= 0")])
def test_bad_rule_text_is_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse_rule(text)


@pytest.mark.parametrize("rows", [5, 4096, 10_001])
def test_epsilon_scales_the_gradient_by_z_over_stabilized_z(rows):
    generator = torch.Generator().manual_seed(rows)
    z = torch.randn(rows, 7, generator=generator, dtype=torch.float64)
    z[::3, 2] = 0.0
    grad = torch.randn(rows, 7, generator=generator, dtype=torch.float64)
    rule = Epsilon(epsilon=0.1)
    sign = torch.where(z >= 0, 1.0, -1.0).to(torch.float64)
    expected = grad * z / (z + 0.1 * sign)
    torch.testing.assert_close(rule.scale_gradient(z, grad), expected, rtol=1e-12, atol=0)
