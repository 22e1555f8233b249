"""One LRP configuration: engines owned by their front and told apart by value, input blocks seen on the pass,
clear errors, and no state left behind (issue 18), each against an explicit float64 computation."""
import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric import nn as pyg
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explainer

import hin_captum
from hin_captum.lrp import LRP, LRPConfig, OperationRules, ZBox
from hin_captum.pyg import LRPExplainer
from hin_captum.util import InputError
from tests.factories import jet_batch, random_hin
from tests.lrp.reference import affine_relevance, numpy

EPSILON = 1e-9


def two_layer(n_in: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()


def explicit_two_layer(model: nn.Sequential, x: torch.Tensor, target: int, low, high) -> np.ndarray:
    """z^B at the first Linear, epsilon at the second, from zero, by contribution matrices (tests/lrp/reference.py)."""
    a, w1, b1 = numpy(x), numpy(model[0].weight), numpy(model[0].bias)
    w2, b2 = numpy(model[2].weight), numpy(model[2].bias)
    hidden = np.maximum(a @ w1.T + b1, 0)
    logits = hidden @ w2.T + b2
    relevance = np.zeros_like(logits)
    relevance[:, target] = logits[:, target]
    r_hidden = affine_relevance(hidden, w2, b2, relevance, epsilon=EPSILON)
    r_pre = r_hidden  # ReLU hands relevance on; where it is 0 there is none
    return affine_relevance(a, w1, b1, r_pre, rule="zbox", epsilon=EPSILON, low=numpy(low), high=numpy(high))


def test_two_zbox_rules_that_differ_only_inside_their_bounds_give_their_own_relevance():
    """1200 features: the bounds print the same ('...'), but each rule gets its own, correct, relevance."""
    model = two_layer(1200, seed=0)
    x = torch.randn(3, 1200, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    low = -torch.ones(1200, dtype=torch.float64) * 3
    other = low.clone()
    other[400:800] = -1.0  # the middle of the tensor, where its printed form has "..."
    high = torch.full((1200,), 3.0, dtype=torch.float64)
    first, second = ZBox(epsilon=EPSILON, low=low, high=high), ZBox(epsilon=EPSILON, low=other, high=high)
    assert repr(first) == repr(second) and first != second and first == ZBox(epsilon=EPSILON, low=low.clone(),
                                                                             high=high)

    for rule, bound in [(first, low), (second, other), (first, low)]:
        relevance = LRP(model, epsilon=EPSILON, rules={"0": rule}, reference="zero").attribute(x, target=1)
        np.testing.assert_allclose(numpy(relevance), explicit_two_layer(model, x, 1, bound, high), rtol=1e-9,
                                   atol=1e-12)
    one = LRPExplainer(epsilon=EPSILON, rules={"0": second}, reference="zero")  # a front reused on two models
    assert one.propagator.engine(model) is one.propagator.engine(model)


class GraphConvNet(nn.Module):
    """GraphConv (lin_rel on the summed neighbours, lin_root on x itself), ReLU, sum pooling, a Linear head."""

    def __init__(self, features: int = 5, hidden: int = 7, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = pyg.GraphConv(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x, edge_index, batch):
        return self.head(pyg.global_add_pool(self.conv(x, edge_index).relu(), batch))


def graphs(features: int = 5) -> Batch:
    generator = torch.Generator().manual_seed(4)
    data = []
    for nodes in (4, 6):
        x = torch.randn(nodes, features, dtype=torch.float64, generator=generator)
        x[:, 2] = 0.0  # a feature that is zero at every node
        edges = torch.tensor([[i, j] for i in range(nodes) for j in range(nodes) if i != j]).T
        data.append(Data(x=x, edge_index=edges))
    return Batch.from_data_list(data)


def explicit_graph_conv(model: GraphConvNet, data: Batch, target: int) -> np.ndarray:
    """flat at lin_root (which reads x), epsilon at lin_rel and the head, from zero, by hand in float64."""
    x, src, dst, batch = numpy(data.x), data.edge_index[0].numpy(), data.edge_index[1].numpy(), data.batch.numpy()
    w_rel, b_rel = numpy(model.conv.lin_rel.weight), numpy(model.conv.lin_rel.bias)
    w_root = numpy(model.conv.lin_root.weight)
    w_head, b_head = numpy(model.head.weight), numpy(model.head.bias)
    aggregated = np.zeros_like(x)
    np.add.at(aggregated, dst, x[src])  # GraphConv sums the sources onto each target
    z_rel, z_root = aggregated @ w_rel.T + b_rel, x @ w_root.T
    hidden = np.maximum(z_rel + z_root, 0)
    pooled = np.zeros((batch.max() + 1, hidden.shape[1]))
    np.add.at(pooled, batch, hidden)
    logits = pooled @ w_head.T + b_head
    r_logits = np.zeros_like(logits)
    r_logits[:, target] = logits[:, target]
    r_pooled = affine_relevance(pooled, w_head, b_head, r_logits, epsilon=EPSILON)
    per_pooled = np.divide(r_pooled, pooled, out=np.zeros_like(r_pooled), where=pooled != 0)
    gradient = np.where(hidden > 0, per_pooled[batch], 0.0)  # sum pooling and ReLU pass the gradient
    r_root, r_rel = z_root * gradient, z_rel * gradient  # the sum z_rel + z_root shares by value (LRP-0)
    flat = np.repeat(r_root.sum(1, keepdims=True) / (x.shape[1] + EPSILON), x.shape[1], axis=1)
    r_aggregated = affine_relevance(aggregated, w_rel, b_rel, r_rel, epsilon=EPSILON)
    per_source = np.divide(r_aggregated, aggregated, out=np.zeros_like(r_aggregated), where=aggregated != 0)
    through_neighbours = np.zeros_like(x)
    np.add.at(through_neighbours, src, per_source[dst])
    return flat + x * through_neighbours


def test_flat_goes_to_the_block_that_reads_the_input_and_a_zero_feature_gets_its_share():
    model, data = GraphConvNet().double().eval(), graphs()
    explanation = hin_captum.attribute(model, data, target=1, composite="epsilon-flat", epsilon=EPSILON,
                                       reference="zero")
    expected = explicit_graph_conv(model, data, 1)
    np.testing.assert_allclose(numpy(explanation.node), expected, rtol=1e-8, atol=1e-12)
    assert np.abs(expected[:, 2]).min() > 1e-3  # the all-zero feature gets flat's share through lin_root


def test_an_input_only_rule_on_a_block_that_reads_no_input_is_refused_by_name():
    model, data = GraphConvNet().double().eval(), graphs()
    with pytest.raises(InputError, match="^rule 'flat' is for a block that reads the explained input, but "
                                         "conv.lin_rel does not"):
        hin_captum.attribute(model, data, rules={"*lin_rel": "flat"})


class CopiesItsInput(nn.Module):
    """The same MLP, registered head first, reading a clone (or a float64 cast) of its input."""

    def __init__(self, mlp: nn.Sequential, copy_input) -> None:
        super().__init__()
        self.head, self.body = mlp[2], mlp[0]
        self.copy_input = copy_input

    def forward(self, x):
        return self.head(self.body(self.copy_input(x)).relu())


@pytest.mark.parametrize("copy_input", [lambda x: x.clone(), lambda x: x.double(), lambda x: x.to(torch.float64)])
def test_a_clone_or_cast_of_the_input_and_the_registration_order_change_nothing(copy_input):
    mlp = two_layer(5, seed=5)
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    low, high = -torch.full((5,), 2.0, dtype=torch.float64), torch.full((5,), 2.0, dtype=torch.float64)
    expected = explicit_two_layer(mlp, x, 0, low, high)
    model = CopiesItsInput(mlp, copy_input)
    composite = hin_captum.lrp.Composite(hidden=hin_captum.lrp.Epsilon(EPSILON),
                                         input=ZBox(epsilon=EPSILON, low=low, high=high))
    relevance = LRP(model, composite=composite, reference="zero").attribute(x, target=0)
    np.testing.assert_allclose(numpy(relevance), expected, rtol=1e-9, atol=1e-12)


def test_interleaved_calls_on_two_models_and_composites_equal_those_on_fresh_models():
    models = [random_hin(seed=1, hidden=16), random_hin(seed=2, hidden=16)]
    data = jet_batch([5, 3], seed=3)
    explainers = {name: LRPExplainer(composite=name) for name in ("epsilon", "gamma")}
    for model, name in [(0, "gamma"), (1, "epsilon"), (0, "epsilon"), (1, "gamma"), (0, "gamma")]:
        fresh = copy.deepcopy(models[model])
        expected = hin_captum.attribute(fresh, data, target=1, composite=name).node
        for explain in (
            lambda: hin_captum.attribute(models[model], data, target=1, composite=name).node,
            lambda: Explainer(models[model], explainers[name], explanation_type="phenomenon", node_mask_type="attributes",
                              model_config=dict(mode="multiclass_classification", task_level="graph",
                                                return_type="raw"))(data.x, data.edge_index, batch=data.batch,
                                                                    target=torch.ones(2, dtype=torch.long)).node_mask,
        ):
            torch.testing.assert_close(explain(), expected)


def test_bad_input_gets_one_clear_line():
    model, data = random_hin(seed=4, hidden=8), jet_batch([4], seed=4)
    with pytest.raises(InputError, match=r"^target 7 is out of range: the model gives 2 outputs per graph \(0 to 1\)"):
        hin_captum.attribute(model, data, target=7)
    with pytest.raises(InputError, match=r"^target 7 is out of range"):
        hin_captum.attribute(model, data, method="inputxgradient", target=7)
    with pytest.raises(InputError, match=r"not a Tensor: for plain tensors use hin_captum.LRP\(model\)"):
        hin_captum.attribute(model, data.x)
    mlp = two_layer(5, seed=0)
    x = torch.randn(3, 5, dtype=torch.float64)
    with pytest.raises(InputError, match="^the model gives 2 outputs per example: pass target="):
        LRP(mlp).attribute(x)
    with pytest.raises(InputError, match=r"^target 2 is out of range: the model gives 2 outputs per example"):
        LRP(mlp).attribute(x, target=2)
    single = nn.Sequential(nn.Linear(5, 1)).double()
    assert LRP(single).attribute(x).shape == x.shape  # one output per example needs no target
    with pytest.raises(InputError, match="^unknown LRP option"):
        LRP(mlp, espilon=0.1)
    with pytest.raises(InputError, match="^unknown precision 'float16'"):
        LRPConfig(precision="float16")
    with pytest.raises(InputError, match="^epsilon must be a number >= 0"):
        LRPExplainer(epsilon=-1)


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        self.linear(x)
        raise RuntimeError("the model failed")


@pytest.mark.parametrize("precision", ["float32", "tf32", "bfloat16"])
def test_torch_precision_settings_are_as_before_after_a_call_that_raises(precision):
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("medium")
    try:
        with pytest.raises(RuntimeError, match="the model failed"):
            LRP(Raises(), precision=precision).attribute(torch.randn(3, 4), target=0)
        assert torch.get_float32_matmul_precision() == "medium"
        assert torch.backends.cudnn.allow_tf32 == before[1]
        assert not torch.is_autocast_enabled("cpu")
    finally:
        torch.set_float32_matmul_precision(before[0])


def test_nothing_is_written_on_the_users_tensors_or_model():
    model = random_hin(seed=5, hidden=8)
    data = jet_batch([4, 3], seed=5)
    x = data.x.clone().requires_grad_()
    attributes = {name: set(vars(module)) for name, module in model.named_modules()}
    with OperationRules(model, [x]):
        model(x, data.edge_index, data.batch)
    assert vars(x) == {}
    hin_captum.attribute(model, data)
    assert vars(data.x) == {} and {name: set(vars(m)) for name, m in model.named_modules()} == attributes
