"""Every rule on random MLPs against the explicit float64 relevance matrices, and a rule written outside the package."""
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from hin_captum.util import InputError
from hin_captum.lrp import (
    LRP, RULES, Affine, AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, WSquare, ZBox, ZPlus, parse_rule,
)
from hin_captum.lrp.composites import Composite
from hin_captum.lrp.affine import divide
from tests.factories import randomize_norms
from tests.lrp.reference import affine_relevance, folded, numpy, share


def random_mlp(seed: int, input_norm: bool = True) -> nn.Sequential:
    """[BN (alone)], Linear+BN, ReLU, Linear, ReLU, Linear: every kind of affine block."""
    torch.manual_seed(seed)
    layers = [nn.Linear(6, 9), nn.BatchNorm1d(9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 3)]
    model = nn.Sequential(*([nn.BatchNorm1d(6)] if input_norm else []), *layers)
    randomize_norms(model, torch.Generator().manual_seed(seed))
    return model.double().eval()


def blocks_of(model: nn.Sequential) -> list[tuple[str, tuple]]:
    """(name, folded (W, b)) of each affine block, and whether a ReLU follows."""
    if isinstance(model[0], nn.BatchNorm1d):
        return [("0", folded(None, model[0])), ("1", folded(model[1], model[2])), ("4", folded(model[4], None)),
                ("6", folded(model[6], None))]
    return [("0", folded(model[0], model[1])), ("3", folded(model[3], None)), ("5", folded(model[5], None))]


def reference_mlp_relevance(model, x, target, specs, x0):
    """Forward in float64 with the input measured from ``x0``, then each block's rule from the output down."""
    blocks = blocks_of(model)
    relu_after = {1, 2} if len(blocks) == 4 else {0, 1}
    inputs, current = [], numpy(x)
    for index, (_, (weight, bias)) in enumerate(blocks):
        if index == 0:
            current, bias = current - x0, bias + weight @ x0
        inputs.append((current, weight, bias))
        z = current @ weight.T + bias
        current = np.maximum(z, 0) if index in relu_after else z
    relevance = np.zeros_like(current)
    rows = np.arange(len(relevance))
    relevance[rows, target] = current[rows, target]
    for index in reversed(range(len(blocks))):
        name, options = specs[index]
        if name == "zbox" and index == 0:  # the box, like the input, is measured from x0
            options = {**options, "low": options["low"] - x0, "high": options["high"] - x0}
        relevance = affine_relevance(*inputs[index], relevance, rule=name, **options)
    return relevance


def as_rule(name, options):
    options = dict(options)
    if "bias_in" in options:
        options["bias"] = options.pop("bias_in")
    if name == "zbox":
        return ZBox(epsilon=options["epsilon"], low=torch.as_tensor(options["low"]),
                    high=torch.as_tensor(options["high"]))
    return RULES[name](**options)


LOW, HIGH = np.full(6, -3.0), np.full(6, 2.5)
EPS = {"epsilon": 1e-6}
RULE_SETS = {  # rules of the input block, the hidden blocks and the output block
    "epsilon": [("epsilon", {"epsilon": 0.1})] * 4,
    "epsilon without bias": [("epsilon", {"epsilon": 0.05, "bias_in": False})] * 4,
    "gamma": [("gamma", {"epsilon": 1e-6, "gamma": 0.5}), ("gamma", {"epsilon": 1e-6, "gamma": 0.5}),
              ("gamma", {"epsilon": 1e-6, "gamma": 0.25}), ("epsilon", EPS)],
    "gamma without bias": [("epsilon", EPS)] + [("gamma", {"epsilon": 1e-3, "gamma": 0.5, "bias_in": False})] * 2
                          + [("epsilon", EPS)],
    "zplus": [("epsilon", {"epsilon": 0.05}), ("zplus", EPS), ("zplus", EPS), ("epsilon", EPS)],
    "alphabeta": [("alphabeta", EPS), ("alphabeta", EPS), ("alphabeta", {"epsilon": 1e-6, "alpha": 1.0, "beta": 0.0}),
                  ("epsilon", EPS)],
    "pass": [("pass", {"epsilon": 1e-9})] + [("epsilon", EPS)] * 3,
    "flat": [("flat", EPS)] + [("epsilon", EPS)] * 3,
    "w2": [("w2", EPS)] + [("epsilon", EPS)] * 3,
    "zbox": [("zbox", {"epsilon": 1e-6, "low": LOW, "high": HIGH})] + [("epsilon", EPS)] * 3,
}


@pytest.mark.parametrize("reference", ["auto", "zero", "tensor"])
@pytest.mark.parametrize("input_norm", [True, False], ids=["bn-first", "linear-first"])
@pytest.mark.parametrize("rule_set", sorted(RULE_SETS))
def test_mlp_relevance_matches_the_reference(rule_set, input_norm, reference):
    model = random_mlp(seed=11, input_norm=input_norm)
    specs = RULE_SETS[rule_set]
    if not input_norm:  # three blocks: drop one hidden rule
        specs = [specs[0], specs[1], specs[3]]
        if rule_set == "pass":
            pytest.skip("pass needs a block of equal input and output sizes")
    names = [name for name, _ in blocks_of(model)]
    composite = Composite(by_name={name: as_rule(*spec) for name, spec in zip(names, specs)})
    x = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 2
    x[0, 1] = 0.0  # an input at exactly zero
    target = torch.tensor([0, 1, 2, 1, 0])
    x0 = {"auto": numpy(model[0].running_mean) if input_norm else np.zeros(6), "zero": np.zeros(6),
          "tensor": np.linspace(-1, 1, 6)}[reference]
    given = torch.as_tensor(x0) if reference == "tensor" else reference

    relevance = LRP(model, composite=composite, reference=given).attribute(x, target=target)

    expected = reference_mlp_relevance(model, x, target.numpy(), specs, x0)
    np.testing.assert_allclose(relevance.detach().numpy(), expected, rtol=1e-6, atol=1e-10)
    assert np.abs(expected).sum() > 1e-3


def test_generalized_gamma_stays_finite_where_the_original_gamma_divides_by_zero():
    """z = 1 - 1.25 < 0; the original rule's W + gamma W+ gives z' = 1.25 - 1.25 = 0 for gamma = 0.25."""
    a = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    weight = torch.tensor([[1.0, -1.25]], dtype=torch.float64)
    z = a @ weight.T
    layer = Affine(a, weight, None, z)
    grad = torch.ones_like(z)

    relevance = Gamma(epsilon=1e-9, gamma=0.25).relevance(layer, grad)

    # the output is negative, so its negative contribution is enhanced: shares 1 / -0.5625 and -1.5625 / -0.5625
    expected = torch.tensor([[1.0, -1.5625]], dtype=torch.float64) / -0.5625 * z
    torch.testing.assert_close(relevance, expected)
    original = (a * (weight + 0.25 * weight.clamp(min=0))) / (a @ (weight + 0.25 * weight.clamp(min=0)).T + 1e-9) * z
    assert original.abs().max() > 1e7  # what the original rule gives here


def test_the_forward_value_is_never_changed():
    model = random_mlp(seed=2)
    x = torch.randn(4, 6, dtype=torch.float64)
    lrp = LRP(model, composite=Composite(hidden=Gamma(gamma=1.0), by_name={"0": Pass()}))
    assert torch.equal(lrp.propagate((x,), target=0).output, model(x))


def test_pass_refuses_a_layer_that_changes_size():
    model = random_mlp(seed=2)
    lrp = LRP(model, rules={"4": "pass"})
    with pytest.raises(InputError, match="rule 'pass' needs equal input and output sizes"):
        lrp.attribute(torch.randn(3, 6, dtype=torch.float64), target=0)


def test_zbox_without_bounds_takes_them_from_the_batchnorm_it_sits_on():
    model = random_mlp(seed=3)
    x = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    norm = model[0]
    spread = 2.0 * (norm.running_var + norm.eps).sqrt()
    explicit = ZBox(epsilon=1e-6, low=norm.running_mean - spread, high=norm.running_mean + spread)
    from_statistics = parse_rule("zbox:2", epsilon=1e-6)

    results = [LRP(model, composite=Composite(hidden=Epsilon(1e-6), by_name={"0": rule})).attribute(x, target=1)
               for rule in (explicit, from_statistics)]

    torch.testing.assert_close(results[0], results[1])
    with pytest.raises(InputError, match="zbox.*without bounds needs a BatchNorm"):
        LRP(torch.nn.Sequential(torch.nn.Linear(6, 2)).double(), rules={"0": "zbox"}).attribute(x, target=1)
    with pytest.raises(InputError, match="^rule 'zbox' is for a block that reads the explained input, but 4 does not"):
        LRP(model, rules={"4": "zbox"}).attribute(x, target=1)


@dataclass(frozen=True)
class RelativeEpsilon(Rule):
    """A rule the package does not have: epsilon scaled by each sample's root-mean-square output (Zennit's norm_scale)."""

    scale: float = 0.1
    name = "test-relative-epsilon"
    arguments = ("scale",)

    def gradient(self, layer: Affine, grad: torch.Tensor) -> torch.Tensor:
        z = layer.output
        stabilizer = self.scale * z.pow(2).mean(-1, keepdim=True).sqrt()
        return layer.backward(divide(grad * z, z + stabilizer * torch.where(z >= 0, 1.0, -1.0), 0.0), layer.weight)


def test_a_rule_defined_outside_the_package_matches_the_reference():
    model = random_mlp(seed=5)
    x = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([2, 1, 0, 0, 1, 2])
    rule = parse_rule("test-relative-epsilon:0.3")  # registered by name, so text and the CLI find it
    assert rule == RelativeEpsilon(scale=0.3)

    relevance = LRP(model, composite=Composite(hidden=rule)).attribute(x, target=target, reference="zero")

    blocks = blocks_of(model)
    inputs, current = [], numpy(x)
    for index, (_, (weight, bias)) in enumerate(blocks):
        inputs.append((current, weight, bias))
        z = current @ weight.T + bias
        current = np.maximum(z, 0) if index in (1, 2) else z
    expected = np.zeros_like(current)
    expected[np.arange(6), target.numpy()] = current[np.arange(6), target.numpy()]
    for a, weight, bias in reversed(inputs):
        z = a @ weight.T + bias
        stabilizer = 0.3 * np.sqrt((z**2).mean(-1, keepdims=True))
        contributions = a[:, None, :] * weight[None]
        expected = np.einsum("bji,bj->bi", contributions, share(expected, z + stabilizer * np.where(z >= 0, 1, -1), 0))
    np.testing.assert_allclose(relevance.detach().numpy(), expected, rtol=1e-8, atol=1e-12)


def test_a_rule_must_say_how_relevance_flows():
    with pytest.raises(TypeError, match="must implement gradient\\(\\) or relevance\\(\\)"):
        @dataclass(frozen=True)
        class Nothing(Rule):
            name = "test-nothing"


@pytest.mark.parametrize(
    "text, expected",
    [("epsilon", Epsilon(0.5)), ("epsilon:1e-3", Epsilon(1e-3)), ("gamma", Gamma(0.5)),
     ("gamma:2", Gamma(0.5, gamma=2.0)), ("zplus", ZPlus(0.5)), ("Pass", Pass(0.5)),
     ("epsilon:0.1:bias=false", Epsilon(0.1, bias=False)), ("alphabeta:3:2", AlphaBeta(0.5, alpha=3.0, beta=2.0)),
     ("flat", Flat(0.5)), ("w2", WSquare(0.5)), ("zbox:4", ZBox(0.5, width=4.0))],
)
def test_rules_parse_from_text(text, expected):
    assert parse_rule(text, epsilon=0.5) == expected


@pytest.mark.parametrize("text, message", [
    ("sharp", "unknown LRP rule"), ("gamma:x", "needs a number"), ("zplus:1", "takes no value"),
    ("epsilon:-1", "epsilon must be >= 0"), ("alphabeta:2:2", "alpha - beta = 1"), ("gamma:bias=maybe", "true or false"),
    ("epsilon:width=3", "no option 'width'"),
])
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
