"""The attention rules (AttnLRP and CP-LRP) against explicit float64 formulas written here, by hand.

Each case builds a small model, explains it with ``hin_captum.LRP`` from zero, and
recomputes the relevance in numpy: contributions and shares as in the AttnLRP and
CP-LRP papers, affine layers by contribution matrices (``tests/lrp/reference.py``).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hin_captum.lrp import LRP
from tests.lrp.reference import affine_relevance, numpy

EPSILON = 1e-4


def linear(n_in: int, n_out: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out).double()


def affine(layer: nn.Linear, a: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """The epsilon rule at ``layer``: relevance of its input ``a`` (any leading dimensions)."""
    shape = a.shape
    flat = affine_relevance(a.reshape(-1, shape[-1]), numpy(layer.weight), numpy(layer.bias),
                            relevance.reshape(-1, relevance.shape[-1]), epsilon=EPSILON)
    return flat.reshape(shape)


def head_relevance(head: nn.Linear, pooled: np.ndarray, target: int) -> np.ndarray:
    logits = pooled @ numpy(head.weight).T + numpy(head.bias)
    out = np.zeros_like(logits)
    out[:, target] = logits[:, target]
    return affine(head, pooled, out)


def stab(value: np.ndarray, epsilon: float = EPSILON) -> np.ndarray:
    return value + epsilon * np.where(value >= 0, 1.0, -1.0)


class Gated(nn.Module):
    """``head(activation(first(x)) * second(x))``: an elementwise nonlinearity gating a product."""

    def __init__(self, activation) -> None:
        super().__init__()
        self.first, self.second, self.head = linear(5, 6, 0), linear(5, 6, 1), linear(6, 3, 2)
        self.activation = activation

    def forward(self, x):
        return self.head(self.activation(self.first(x)) * self.second(x))


@pytest.mark.parametrize("activation", [F.gelu, torch.sigmoid, F.silu, torch.tanh])
def test_a_gated_product_gives_each_factor_half_and_the_nonlinearity_hands_relevance_on(activation):
    model = Gated(activation).eval()
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    a, b = numpy(model.first(x)), numpy(model.second(x))
    gate = numpy(activation(torch.from_numpy(a)))
    r_product = head_relevance(model.head, gate * b, 1)
    r_gate = r_second = r_product / 2  # the uniform rule
    r_first = r_gate  # the identity rule
    expected = affine(model.first, numpy(x), r_first) + affine(model.second, numpy(x), r_second)

    relevance = LRP(model, epsilon=EPSILON, reference="zero").attribute(x, target=1)
    np.testing.assert_allclose(numpy(relevance), expected, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("activation", [torch.sigmoid, F.silu])
def test_cp_lrp_holds_a_gate_constant(activation):
    model = Gated(activation).eval()
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    gate, b = numpy(activation(model.first(x))), numpy(model.second(x))
    expected = affine(model.second, numpy(x), head_relevance(model.head, gate * b, 0))  # all of it to the value

    relevance = LRP(model, epsilon=EPSILON, reference="zero", attention="cp").attribute(x, target=0)
    np.testing.assert_allclose(numpy(relevance), expected, rtol=1e-7, atol=1e-10)


class SoftmaxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.head = linear(5, 6, 5), linear(6, 2, 6)

    def forward(self, x):
        return self.head(torch.softmax(self.first(x), -1))


def test_the_softmax_rule_is_x_times_r_minus_s_times_the_sum_of_r():
    model = SoftmaxHead().eval()
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    logits = numpy(model.first(x))
    s = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    r_s = head_relevance(model.head, s, 1)
    r_logits = logits * (r_s - s * r_s.sum(-1, keepdims=True))  # AttnLRP's softmax rule
    expected = affine(model.first, numpy(x), r_logits)

    relevance = LRP(model, epsilon=EPSILON, reference="zero").attribute(x, target=1)
    np.testing.assert_allclose(numpy(relevance), expected, rtol=1e-7, atol=1e-10)


class Normed(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm, self.head = norm.double(), linear(6, 2, 7)
        torch.manual_seed(8)
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)
            if getattr(self.norm, "bias", None) is not None:
                self.norm.bias.normal_()

    def forward(self, x):
        return self.head(self.norm(x))


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_normalisation_holds_the_spread_constant_and_rules_its_affine_part_with_epsilon(kind):
    model = Normed(nn.LayerNorm(6) if kind == "layer" else nn.RMSNorm(6, eps=1e-6)).eval()
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    a = numpy(x)
    w = numpy(model.norm.weight)
    b = numpy(model.norm.bias) if kind == "layer" else 0.0
    shifted = a - a.mean(-1, keepdims=True) if kind == "layer" else a
    spread = np.sqrt((shifted**2).mean(-1, keepdims=True) + model.norm.eps)
    z = shifted / spread * w + b
    r_z = head_relevance(model.head, z, 0)
    g_y = w * r_z / stab(z)  # the epsilon rule on z = w y + b
    g_x = (g_y - g_y.mean(-1, keepdims=True) if kind == "layer" else g_y) / spread  # spread held constant
    expected = a * g_x

    relevance = LRP(model, epsilon=EPSILON, reference="zero").attribute(x, target=0)
    np.testing.assert_allclose(numpy(relevance), expected, rtol=1e-7, atol=1e-10)


class Attention(nn.Module):
    """One head of ``softmax(Q K^T / sqrt(d) + U) V``, mean over the sequence, a Linear head; ``fused`` uses
    ``F.scaled_dot_product_attention``, else ``nn.MultiheadAttention`` (batch first)."""

    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused
        self.query, self.key, self.value, self.head = (linear(4, 4, seed) for seed in (10, 11, 12, 13))
        self.attention = nn.MultiheadAttention(4, 1, batch_first=True).double()
        with torch.no_grad():  # the same projections in both forms
            self.attention.in_proj_weight.copy_(torch.cat([self.query.weight, self.key.weight, self.value.weight]))
            self.attention.in_proj_bias.copy_(torch.cat([self.query.bias, self.key.bias, self.value.bias]))
            self.attention.out_proj.weight.copy_(torch.eye(4))
            self.attention.out_proj.bias.zero_()

    def forward(self, x, pair_bias):
        if self.fused:
            out = F.scaled_dot_product_attention(self.query(x), self.key(x), self.value(x), attn_mask=pair_bias)
        else:
            out, _ = self.attention(x, x, x, attn_mask=pair_bias, need_weights=False)
        return self.head(out.mean(1))


def explicit_attention(model: Attention, x: torch.Tensor, pair_bias: torch.Tensor, target: int, rule: str):
    """Relevance of ``x`` and of the pair bias ``U``, step by step (the uniform rule at both products, the softmax
    rule; under CP-LRP the attention probabilities are constants)."""
    X, U = numpy(x), numpy(pair_bias)
    q, k, v = (X @ numpy(layer.weight).T + numpy(layer.bias) for layer in (model.query, model.key, model.value))
    scale = 1 / np.sqrt(q.shape[-1])
    qk = scale * q @ k.transpose(0, 2, 1)
    S = qk + U
    A = np.exp(S - S.max(-1, keepdims=True))
    A /= A.sum(-1, keepdims=True)
    O = A @ v
    pooled = O.mean(1)
    r_pooled = head_relevance(model.head, pooled, target)
    r_O = O / O.shape[1] / pooled[:, None, :] * r_pooled[:, None, :]  # mean pooling: LRP-0
    if not model.fused:  # nn.MultiheadAttention's out-projection (the identity here) is an affine layer too
        r_O = affine(model.attention.out_proj, O, r_O)
    contribution = A[:, :, :, None] * v[:, None, :, :] / O[:, :, None, :] * r_O[:, :, None, :]  # [b, i, j, d]
    share = 1.0 if rule == "cp" else 0.5
    r_v = share * contribution.sum(1)
    if rule == "cp":
        return affine(model.value, X, r_v), np.zeros_like(U)
    r_A = 0.5 * contribution.sum(3)
    grad_S = r_A - A * r_A.sum(-1, keepdims=True)  # the softmax rule, as a gradient of S
    r_U = U * grad_S
    terms = scale * q[:, :, None, :] * k[:, None, :, :] * grad_S[:, :, :, None]  # [b, i, j, d]
    r_q, r_k = 0.5 * terms.sum(2), 0.5 * terms.sum(1)
    r_x = affine(model.query, X, r_q) + affine(model.key, X, r_k) + affine(model.value, X, r_v)
    return r_x, r_U


@pytest.mark.parametrize("fused", [True, False], ids=["scaled_dot_product_attention", "MultiheadAttention"])
@pytest.mark.parametrize("rule", ["attnlrp", "cp"])
def test_attention_with_a_pair_bias_against_its_explicit_composition(fused, rule):
    model = Attention(fused).eval()
    generator = torch.Generator().manual_seed(14)
    x = torch.randn(2, 5, 4, dtype=torch.float64, generator=generator)
    pair_bias = torch.randn(2, 5, 5, dtype=torch.float64, generator=generator)
    expected_x, expected_u = explicit_attention(model, x, pair_bias, 1, rule)

    r_x, r_u = LRP(model, epsilon=EPSILON, reference="zero", attention=rule).attribute((x, pair_bias), target=1)
    np.testing.assert_allclose(numpy(r_x), expected_x, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(numpy(r_u), expected_u, rtol=1e-6, atol=1e-10)
