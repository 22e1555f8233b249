"""LRP rules for the operations of attention models, as autograd functions (LXT's efficient AttnLRP, and CP-LRP).

Relevance travels as a gradient (``input * gradient`` is the relevance), so a rule
for a non-affine operation is the gradient it lets through:

- **uniform rule** (:class:`DivideGradient`): a product of ``n`` input-dependent
  factors (``Q K^T``, attention times ``V``, gates, ``alpha * x_j``) is bilinear, so
  gradient x input gives each factor all of the product's relevance; dividing each
  factor's gradient by ``n`` gives each its ``1/n`` share (AttnLRP, Eq. 7);
- **identity rule** (:class:`IdentityRule`): an elementwise nonlinearity (GELU, SiLU,
  sigmoid, tanh) hands its output relevance to its input unchanged (AttnLRP, Eq. 9);
- **softmax**: its true gradient is AttnLRP's softmax rule ``R_x = x (R_s - s sum R_s)``,
  so it passes unchanged; under CP-LRP (Ali et al. 2022) the attention probabilities
  are constants and nothing flows into the softmax;
- **normalisation** (:class:`NormRule`): LayerNorm and RMSNorm with the standard
  deviation treated as a constant (the identity rule on the normalisation), their
  affine part ruled like any elementwise affine layer (epsilon rule);
- **refusal** (:class:`Refusal`): an operation with no sound rule fails when relevance
  would flow through it (in the backward pass), naming it and its module; one whose
  output carries no relevance (pairwise distances that only feed ``topk``) passes.

:func:`scaled_dot_product_attention` and :func:`multi_head_attention` write fused
attention as its composition, with these rules, so ``F.scaled_dot_product_attention``
and ``nn.MultiheadAttention`` are explained as what they compute.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .canonization import UnsupportedModuleError

ATTENTION_RULES = ("attnlrp", "cp")
"""``attnlrp``: AttnLRP (Achtibat et al., ICML 2024), as LXT's efficient implementation computes it; ``cp``:
CP-LRP (Ali et al., ICML 2022), the attention probabilities (and gates) held constant."""
IDENTITY_EPSILON = 1e-10
"""Stabilizer of the identity rule's ``output / input`` (LXT's)."""


class DivideGradient(torch.autograd.Function):
    """Identity forward; the gradient divided by ``factor`` (the uniform rule for a product of ``factor`` factors)."""

    @staticmethod
    def forward(ctx, x: Tensor, factor: float) -> Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad / ctx.factor, None


class IdentityRule(torch.autograd.Function):
    """``function(x)`` forward; the output's relevance handed to the input: gradient ``output / x``."""

    @staticmethod
    def forward(ctx, function: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        output = function(x)
        ctx.save_for_backward(output / torch.where(x >= 0, x + IDENTITY_EPSILON, x - IDENTITY_EPSILON))
        return output

    @staticmethod
    def backward(ctx, grad: Tensor):
        (ratio,) = ctx.saved_tensors
        return None, grad * ratio


class NormRule(torch.autograd.Function):
    """LayerNorm or RMSNorm with the standard deviation held constant, and the epsilon rule on its affine part.

    ``z = w * y + b`` with ``y = (x - mean) / sd`` (``y = x / rms`` for RMSNorm) over the
    last ``dims`` dimensions. Backward: ``g_y = w * g * |z| / (|z| + epsilon)`` (the
    epsilon rule; the bias keeps its share), then ``g_x = (g_y - mean(g_y)) / sd``, the
    gradient of ``(x - mean) / sd`` at constant ``sd`` (without the mean for RMSNorm).
    """

    @staticmethod
    def forward(ctx, x: Tensor, dims: int, weight: Tensor | None, bias: Tensor | None, eps: float, centred: bool,
                epsilon: float) -> Tensor:
        axes = tuple(range(-dims, 0))
        shape = x.shape[-dims:]
        if centred:  # PyTorch's own kernel, which gives the reciprocal spread too
            z, _, reciprocal = torch.native_layer_norm(x, shape, weight, bias, eps)
            spread = reciprocal.reciprocal()
        else:
            spread = (x.pow(2).mean(axes, keepdim=True) + eps).sqrt()
            z = x / spread if weight is None else x / spread * weight
            z = z if bias is None else z + bias
        ctx.save_for_backward(spread, z, weight)
        ctx.axes, ctx.centred, ctx.epsilon = axes, centred, epsilon
        return z

    @staticmethod
    def backward(ctx, grad: Tensor):
        spread, z, weight = ctx.saved_tensors
        if ctx.epsilon:
            magnitude = z.abs()
            grad = grad * magnitude / (magnitude + ctx.epsilon)
        grad_y = grad if weight is None else grad * weight
        if ctx.centred:
            grad_y = grad_y - grad_y.mean(ctx.axes, keepdim=True)
        return grad_y / spread, None, None, None, None, None, None


@dataclass(eq=False)
class Refusal:
    """An operation with no sound LRP rule: relevance flowing through it raises, naming it; ``allowed`` lets it
    pass (an ``exp`` found to be the numerator of a softmax). ``message()`` is only called to raise."""

    message: Callable[[], str]
    allowed: bool = False

    def apply(self, x: Tensor) -> Tensor:
        return _Refuse.apply(x, self)


class _Refuse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, refusal: Refusal) -> Tensor:
        ctx.refusal = refusal
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if not ctx.refusal.allowed:
            raise UnsupportedModuleError(ctx.refusal.message())
        return grad, None


class AttentionRules:
    """The rules of one LRP pass for products, softmax and gates, under ``attention`` (:data:`ATTENTION_RULES`).

    ``dependent(t)`` says whether ``t`` depends on an explained input, ``mark(t)`` records
    that it does (for tensors made inside a rule, where the pass's operation mode does
    not see them), and ``is_gate(t)`` whether ``t`` is the output of a softmax or a gate
    nonlinearity (sigmoid, SiLU...): under CP-LRP such a factor of a product is constant.
    """

    def __init__(self, attention: str, dependent: Callable[[object], bool], mark: Callable[[Tensor, bool], None],
                 is_gate: Callable[[Tensor], bool]) -> None:
        self.attention = attention
        self.dependent = dependent
        self.mark = mark
        self.is_gate = is_gate

    def factors(self, tensors: list[Tensor], held: Sequence[int] = ()) -> list[Tensor]:
        """The factors of one product, with the uniform rule (AttnLRP) or constant gates (CP-LRP) applied; the
        factors at ``held`` are held constant under either (a message's sigmoid gate)."""
        dependent = [index for index, t in enumerate(tensors) if self.dependent(t)]
        out = list(tensors)
        constant = set(held) | ({i for i in dependent if self.is_gate(tensors[i])} if self.attention == "cp" else set())
        for index in sorted(constant & set(dependent)):
            out[index] = tensors[index].detach()
        dependent = [i for i in dependent if i not in constant]
        if len(dependent) > 1:
            for index in dependent:
                out[index] = DivideGradient.apply(out[index], float(len(dependent)))
        return out

    def product(self, function: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
        """``function(*tensors)`` of a product, its factors ruled."""
        out = function(*self.factors(list(tensors)))
        self.mark(out, any(self.dependent(t) for t in tensors))
        return out

    def softmax(self, logits: Tensor, dim: int) -> Tensor:
        """The attention probabilities: the true gradient (AttnLRP's softmax rule), or constants (CP-LRP)."""
        probabilities = torch.softmax(logits, dim)
        if self.attention == "cp":
            return probabilities.detach()
        self.mark(probabilities, self.dependent(logits), gate=True)
        return probabilities

    def scaled_dot_product_attention(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                     dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                     enable_gqa: bool = False) -> Tensor:
        """``softmax(Q K^T * scale + mask) V`` (PyTorch's definition), each product and the softmax ruled; an
        input-dependent additive mask (a pair bias) shares the logits' relevance with ``Q K^T`` by value."""
        if enable_gqa:
            raise UnsupportedModuleError("scaled_dot_product_attention with enable_gqa=True has no LRP rule here")
        scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
        transposed = key.transpose(-2, -1)
        self.mark(transposed, self.dependent(key))
        logits = self.product(torch.matmul, query, transposed)
        dependent = self.dependent(logits)
        logits = logits * scale
        if is_causal:
            causal = torch.ones(query.shape[-2], key.shape[-2], dtype=torch.bool, device=query.device).tril()
            logits = logits.masked_fill(~causal, float("-inf"))
        if attn_mask is not None:
            logits = logits.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool \
                else logits + attn_mask
            dependent = dependent or self.dependent(attn_mask)
        self.mark(logits, dependent)
        probabilities = self.softmax(logits, -1)
        if dropout_p > 0:
            probabilities = F.dropout(probabilities, dropout_p)
        return self.product(torch.matmul, probabilities, value)

    def multi_head_attention(self, affine: Callable[[Tensor, Tensor, Tensor | None], Tensor], query: Tensor,
                             key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                             in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
                             bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
                             out_proj_bias: Tensor | None, training: bool = True,
                             key_padding_mask: Tensor | None = None, need_weights: bool = True,
                             attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
                             q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
                             v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
                             static_v: Tensor | None = None, average_attn_weights: bool = True,
                             is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """``F.multi_head_attention_forward`` (what ``nn.MultiheadAttention`` runs) as its composition: the in- and
        out-projections through ``affine`` (their LRP rule), the attention through
        :meth:`scaled_dot_product_attention`. Inputs are ``(length, batch, embed)``, as that function takes them."""
        if bias_k is not None or bias_v is not None or add_zero_attn or static_k is not None or static_v is not None:
            raise UnsupportedModuleError("nn.MultiheadAttention with add_bias_kv, add_zero_attn or static keys has no "
                                         "LRP rule here")
        target_length, batch, embed = query.shape
        source_length = key.shape[0]
        head = embed // num_heads
        if use_separate_proj_weight:
            weights = (q_proj_weight, k_proj_weight, v_proj_weight)
        else:
            weights = in_proj_weight.chunk(3)
        biases = (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
        q, k, v = (affine(x, w, b) for x, w, b in zip((query, key, value), weights, biases))

        def heads(x: Tensor, length: int) -> Tensor:  # (length, batch, embed) -> (batch, heads, length, head)
            return x.reshape(length, batch, num_heads, head).permute(1, 2, 0, 3)

        q, k, v = heads(q, target_length), heads(k, source_length), heads(v, source_length)
        mask = _merged_mask(attn_mask, key_padding_mask, batch, num_heads, target_length, source_length, q.dtype)
        self.mark(q, self.dependent(query))
        self.mark(k, self.dependent(key))
        self.mark(v, self.dependent(value))
        out = self.scaled_dot_product_attention(q, k, v, mask, dropout_p if training else 0.0, is_causal and mask is None)
        out = out.permute(2, 0, 1, 3).reshape(target_length, batch, embed)
        self.mark(out, self.dependent(query) or self.dependent(key) or self.dependent(value))
        out = affine(out, out_proj_weight, out_proj_bias)
        if not need_weights:
            return out, None
        with torch.no_grad():  # the weights are reported, not explained
            logits = q @ k.transpose(-2, -1) / math.sqrt(head) + (0.0 if mask is None else mask)
            probabilities = logits.softmax(-1)
        return out, probabilities.mean(1) if average_attn_weights else probabilities


def _merged_mask(attn_mask: Tensor | None, key_padding_mask: Tensor | None, batch: int, heads: int, target: int,
                 source: int, dtype: torch.dtype) -> Tensor | None:
    """One additive float mask ``(batch, heads, target, source)`` from an attention mask and a key padding mask."""
    def additive(mask: Tensor) -> Tensor:
        return torch.zeros_like(mask, dtype=dtype).masked_fill(mask, float("-inf")) if mask.dtype == torch.bool \
            else mask.to(dtype)

    merged = None
    if attn_mask is not None:
        merged = additive(attn_mask)
        merged = merged.reshape(batch, heads, target, source) if merged.dim() == 3 else merged.expand(
            batch, heads, target, source)
    if key_padding_mask is not None:
        padding = additive(key_padding_mask).reshape(batch, 1, 1, source)
        merged = padding.expand(batch, heads, target, source) if merged is None else merged + padding
    return merged
