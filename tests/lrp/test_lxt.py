"""hin_captum's attention rules equal LXT's (lxt 2.1, the AttnLRP authors' package) at epsilon 1e-9 from zero.

LXT's rules make gradient x input LRP; hin_captum applies the same rules through its
hooks and operation mode, with the epsilon rule on every affine layer (at 1e-9 the
plain gradient). Cases: a plain PyTorch transformer block (LayerNorm,
``nn.MultiheadAttention``, GELU), weaver-core's ParticleTransformer, and PyG's
GATConv, GATv2Conv and TransformerConv (their rule written into ``message``).
"""
import copy
from functools import partial

import pytest
import torch
from torch import nn
from torch_geometric import nn as pyg
from torch_geometric.data import Batch, Data

from hin_captum.lrp import LRP
from tests.lrp import lxt

TINY = 1e-9


class TransformerBlock(nn.Module):
    """Pre-norm self-attention with a key padding mask and a GELU MLP, mean pooling, a Linear head."""

    def __init__(self, features: int = 6, width: int = 8, heads: int = 2, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(features, width)
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.head = nn.Linear(width, classes)
        for norm in (self.norm1, self.norm2):
            nn.init.uniform_(norm.weight, 0.5, 1.5)
            nn.init.normal_(norm.bias, std=0.2)

    def forward(self, x, padding):
        h = self.embed(x)
        normed = self.norm1(h)
        attended, _ = self.attention(normed, normed, normed, key_padding_mask=padding)
        h = h + attended
        h = h + self.mlp(self.norm2(h))
        keep = (~padding).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1))


@pytest.mark.parametrize("attention", ["attnlrp", "cp"])
def test_a_pytorch_transformer_block_equals_lxt(attention):
    model = TransformerBlock().double().eval()
    x = torch.randn(3, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[1, 5:] = padding[2, 3:] = True

    ours = LRP(model, epsilon=TINY, reference="zero", attention=attention).attribute(
        x, target=2, additional_forward_args=(padding,))
    with lxt.patched(lxt.transformer_patches(attention)):
        (theirs,) = lxt.input_times_gradient(model, (x,), 2, padding)

    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)
    assert ours[padding].abs().max() == 0 and ours.abs().max() > 1e-3
    (plain,) = lxt.input_times_gradient(model, (x,), 2, padding)  # LXT's patches are gone again
    assert not torch.allclose(ours, plain), "the rules change the gradient"


PART_SIZES = {
    "small": dict(embed_dims=[16, 16], pair_embed_dims=[8, 8], num_heads=2, num_layers=2, num_cls_layers=1),
    "JetClass": dict(embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8,
                     num_cls_layers=2),  # the JetClass authors' example network (example_ParticleTransformer.py)
}


@pytest.mark.parametrize("size", PART_SIZES)
def test_weavers_particle_transformer_equals_lxt(size):
    part = pytest.importorskip("weaver.nn.model.ParticleTransformer")
    torch.manual_seed(2)
    model = part.ParticleTransformer(input_dim=7, num_classes=2, pair_input_dim=4, fc_params=[], trim=False,
                                     **PART_SIZES[size]).double().eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.3)
            module.running_var.uniform_(0.5, 1.5)
    generator = torch.Generator().manual_seed(3)
    mask = torch.ones(3, 1, 9, dtype=torch.float64)
    mask[1, :, 6:] = mask[2, :, 4:] = 0
    x = torch.randn(3, 7, 9, dtype=torch.float64, generator=generator) * mask
    momenta = torch.randn(3, 3, 9, dtype=torch.float64, generator=generator)
    v = torch.cat([momenta, momenta.norm(dim=1, keepdim=True) * 1.2 + 0.1], 1) * mask

    ours = LRP(model, epsilon=TINY, reference="zero").attribute(x, target=1, additional_forward_args=(v, mask))
    _, patches = lxt.lxt_efficient()
    with lxt.patched({nn.LayerNorm: partial(patches.patch_method, patches.layer_norm_forward),
                      nn.GELU: partial(patches.patch_method, patches.non_linear_forward, keep_original=True),
                      part.Attention: partial(patches.patch_method, lxt.attnlrp_attention(
                          lambda self, *args, **kwargs: self.original_forward(*args, **kwargs),
                          constant_query=lambda query: query.data_ptr() == model.cls_token.data_ptr()),
                          keep_original=True)}):
        (theirs,) = lxt.input_times_gradient(model, (x,), 1, v, mask)

    # epsilon 1e-9 against the plain gradient, through 2 to 8 blocks: equal to 1e-5 of the largest relevance
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))
    assert (ours * (1 - mask)).abs().max() == 0 and ours.abs().max() > 1e-3


class AttentionGraphNet(nn.Module):
    def __init__(self, conv: nn.Module, width: int) -> None:
        super().__init__()
        self.conv, self.head = conv, nn.Linear(width, 3)

    def forward(self, x, edge_index, batch):
        return self.head(pyg.global_mean_pool(self.conv(x, edge_index).relu(), batch))


LAYERS = {
    "GATConv": lambda bias: pyg.GATConv(5, 4, heads=2, bias=bias),
    "GATv2Conv": lambda bias: pyg.GATv2Conv(5, 4, heads=2, bias=bias),
    "TransformerConv": lambda bias: pyg.TransformerConv(5, 4, heads=2, bias=bias, root_weight=True),
}


def graphs() -> Batch:
    generator = torch.Generator().manual_seed(5)
    data = []
    for nodes in (5, 7):
        edges = torch.tensor([[i, j] for i in range(nodes) for j in range(nodes) if i != j and (i + j) % 3]).T
        data.append(Data(x=torch.randn(nodes, 5, dtype=torch.float64, generator=generator), edge_index=edges))
    return Batch.from_data_list(data)


@pytest.mark.parametrize("kind", LAYERS)
def test_pyg_attention_layers_equal_lxts_rules_written_into_their_message(kind):
    torch.manual_seed(6)
    model = AttentionGraphNet(LAYERS[kind](True), 8).double().eval()
    data = graphs()
    ours = LRP(model, epsilon=TINY, reference="zero").attribute(
        data.x, target=1, additional_forward_args=(data.edge_index, data.batch))
    theirs_model = copy.deepcopy(model)
    lxt.attention_messages(theirs_model.conv)
    (theirs,) = lxt.input_times_gradient(theirs_model, (data.x,), 1, data.edge_index, data.batch)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-8)  # epsilon 1e-9 against the plain gradient
    (plain,) = lxt.input_times_gradient(model, (data.x,), 1, data.edge_index, data.batch)
    assert not torch.allclose(ours, plain)


@pytest.mark.parametrize("kind", LAYERS)
def test_cp_lrp_conserves_exactly_on_bias_free_attention_networks(kind):
    torch.manual_seed(7)
    model = AttentionGraphNet(LAYERS[kind](False), 8)
    model.head.bias = None
    model = model.double().eval()
    data = graphs()
    relevance = LRP(model, epsilon=TINY, reference="zero", attention="cp").attribute(
        data.x, target=0, additional_forward_args=(data.edge_index, data.batch))
    logits = model(data.x, data.edge_index, data.batch)[:, 0]
    per_graph = torch.zeros(2, dtype=torch.float64).index_add_(0, data.batch, relevance.sum(1))
    torch.testing.assert_close(per_graph, logits, rtol=1e-7, atol=1e-9)


def test_weavers_particlenet_is_input_times_gradient_at_epsilon_zero():
    particlenet = pytest.importorskip("weaver.nn.model.ParticleNet")
    torch.manual_seed(8)
    model = particlenet.ParticleNet(input_dims=7, num_classes=2, conv_params=[(4, (16, 16, 16)), (4, (32, 32, 32))],
                                    fc_params=[(32, 0.1)], use_fusion=True, trim=False).double().eval()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    generator = torch.Generator().manual_seed(9)
    mask = torch.ones(3, 1, 10, dtype=torch.float64)
    mask[1, :, 7:] = mask[2, :, 5:] = 0
    points = torch.randn(3, 2, 10, dtype=torch.float64, generator=generator) * mask
    features = torch.randn(3, 7, 10, dtype=torch.float64, generator=generator) * mask

    x = features.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(model(points, x, mask)[:, 1].sum(), x)
    for epsilon, tolerance in ((TINY, 1e-4), (0.0, 1e-9)):  # at 1e-9, z / (z + 1e-9) moves the smallest z by 1e-5
        r_points, r_features = LRP(model, epsilon=epsilon, reference="zero").attribute(
            (points, features), target=1, additional_forward_args=(mask,))
        torch.testing.assert_close(r_features, features * gradient, rtol=tolerance, atol=tolerance * 1e-3)
        assert r_points.abs().max() == 0  # the kNN graph is built from the points: topk indices carry no relevance
