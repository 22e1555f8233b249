"""LXT's efficient AttnLRP and CP-LRP rules (lxt 2.1, the authors' package), applied to a model for the duration of a
``with`` block and restored afterwards, for tests that compare hin_captum with it.

``lxt.efficient``'s package ``__init__`` imports ``transformers`` (its model maps);
its ``rules`` and ``patches`` modules need only torch, so they are imported from a
namespace that skips that ``__init__``. For layers LXT has no patch for (PyG's
attention layers), the rule is written into the layer's ``message`` with LXT's own
``divide_gradient``, as LXT writes it into Hugging Face's attention functions.
"""
from __future__ import annotations

import importlib.util
import math
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import torch
from torch import nn


def lxt_efficient():
    """``(rules, patches)`` of ``lxt.efficient``, without its package ``__init__`` (which imports transformers)."""
    spec = importlib.util.find_spec("lxt")
    if spec is None:
        pytest.skip("lxt is not installed (pip install --no-deps lxt==2.1)")
    if "lxt.efficient" not in sys.modules:
        package = types.ModuleType("lxt.efficient")
        package.__path__ = [str(Path(spec.origin).parent / "efficient")]
        sys.modules["lxt.efficient"] = package
    from lxt.efficient import patches, rules

    return rules, patches


@contextmanager
def patched(classes: dict[type, object]) -> Iterator[None]:
    """LXT's patch functions on the given classes' ``forward`` (``patch_method``), undone afterwards."""
    _, patches = lxt_efficient()
    saved = {cls: (cls.__dict__.get("forward"), cls.__dict__.get("original_forward")) for cls in classes}
    try:
        for cls, patch in classes.items():
            assert patch(cls)
        yield
    finally:
        for cls, (forward, original) in saved.items():
            cls.forward = forward
            if original is None and "original_forward" in cls.__dict__:
                delattr(cls, "original_forward")


def attnlrp_attention(forward, pair_bias: bool = False, constant_query=lambda query: False):
    """LXT's AttnLRP wrapper of an attention function (``wrap_attention_forward``: the query's and key's gradient
    divided by 4, the value's by 2), for a module's ``forward(query, key, value, ...)``; with ``pair_bias``, the
    gradient of an additive mask (ParT's pair embedding) divided by 2, its share of the product with V.

    LXT's factors assume a query that depends on the input. Where ``constant_query(query)`` (ParT's class token
    attending to the particles) ``Q K^T`` is linear in ``K``: the key keeps the logits' whole share, divided by 2
    for the product with V only, as the uniform rule has it."""
    rules, _ = lxt_efficient()

    def attention_forward(self, query, key, value, *args, **kwargs):
        factors = ((query, 4), (key, 2 if constant_query(query) else 4), (value, 2))
        query, key, value = (rules.divide_gradient(t, f) for t, f in factors)
        if pair_bias and kwargs.get("attn_mask") is not None and kwargs["attn_mask"].requires_grad:
            kwargs["attn_mask"] = rules.divide_gradient(kwargs["attn_mask"], 2)
        return forward(self, query, key, value, *args, **kwargs)

    return attention_forward


def transformer_patches(attention: str) -> dict[type, object]:
    """LXT's patches of a plain PyTorch transformer: LayerNorm (std held constant), GELU (identity rule), and
    ``nn.MultiheadAttention`` (AttnLRP's q, k / 4 and v / 2, or CP-LRP's ``cp_multi_head_attention_forward``)."""
    from functools import partial

    _, patches = lxt_efficient()
    mha = patches.cp_multi_head_attention_forward if attention == "cp" else attnlrp_attention(
        lambda self, *args, **kwargs: self.original_forward(*args, **kwargs))
    return {
        nn.LayerNorm: partial(patches.patch_method, patches.layer_norm_forward),
        nn.GELU: partial(patches.patch_method, patches.non_linear_forward, keep_original=True),
        nn.MultiheadAttention: partial(patches.patch_method, mha, keep_original=True),
    }


def attention_messages(layer: nn.Module) -> None:
    """Write AttnLRP's uniform rule into a PyG attention layer's ``message`` (on this instance only), with LXT's
    ``divide_gradient``: GATConv and GATv2Conv ``alpha * x_j``, TransformerConv's ``(q_i k_j) ... * v_j``."""
    rules, _ = lxt_efficient()
    half = lambda t, f=2: rules.divide_gradient(t, f)  # noqa: E731
    from torch_geometric.utils import softmax

    if type(layer).__name__ in ("GATConv", "GATv2Conv"):
        layer.message = lambda x_j, alpha: half(alpha).unsqueeze(-1) * half(x_j)
        return

    def transformer_message(query_i, key_j, value_j, edge_attr, index, ptr, size_i):
        query_i, key_j, value_j = half(query_i, 4), half(key_j, 4), half(value_j, 2)
        if layer.lin_edge is not None:
            edge_attr = layer.lin_edge(edge_attr).view(-1, layer.heads, layer.out_channels)
            key_j = key_j + edge_attr
        alpha = (query_i * key_j).sum(dim=-1) / math.sqrt(layer.out_channels)
        alpha = softmax(alpha, index, ptr, size_i)
        out = value_j if edge_attr is None else value_j + edge_attr
        return out * alpha.view(-1, layer.heads, 1)

    layer.message = transformer_message


def input_times_gradient(model: nn.Module, inputs: tuple[torch.Tensor, ...], target: int, *extra) -> tuple:
    """Gradient x input of the target logit: LRP under whatever rules are patched in."""
    inputs = tuple(x.detach().clone().requires_grad_() for x in inputs)
    output = model(*inputs, *extra)
    gradients = torch.autograd.grad(output[:, target].sum(), inputs)
    return tuple(x.detach() * g for x, g in zip(inputs, gradients))
