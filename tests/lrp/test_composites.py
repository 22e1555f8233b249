"""Composites assign rules by name pattern and position."""
import pytest

from hin_captum.util import InputError
from hin_captum.lrp import (
    DEFAULT_EPSILON, AlphaBeta, Epsilon, Flat, Gamma, Pass, ZBox, ZPlus, find_affine_blocks, make_composite,
)
from tests.factories import random_hin


def rules_by_name(composite, model):
    """The rules with the first block reading the input, as the HIN's input BatchNorm does."""
    blocks = find_affine_blocks(model)
    return {block.name: rule for block, rule in composite.assign(blocks, reading={blocks[0]}).items()}


def test_linear_and_batchnorm_pairs_are_canonized_into_one_block():
    blocks = find_affine_blocks(random_hin(seed=0, n_features=4, hidden=8))
    assert [block.names for block in blocks][:3] == [
        ("bn",),
        ("interactionnetwork.edge_model.edge_mlp.0", "interactionnetwork.edge_model.edge_mlp.1"),
        ("interactionnetwork.edge_model.edge_mlp.3",),
    ]
    assert len(blocks) == 9


@pytest.mark.parametrize("name, hidden, first", [("gamma", Gamma, Epsilon), ("zplus", ZPlus, Epsilon),
                                                 ("alpha2beta1", AlphaBeta, Epsilon), ("epsilon-flat", Epsilon, Flat),
                                                 ("gamma-zbox", Gamma, ZBox)])
def test_named_composites_keep_epsilon_on_the_output_and_their_own_rule_at_the_input(name, hidden, first):
    rules = rules_by_name(make_composite(name, epsilon=1e-3), random_hin(seed=0, n_features=4, hidden=8))
    assert rules.pop("interactionnetwork.global_model.global_mlp.3") == Epsilon(1e-3)
    assert type(rules.pop("bn")) is first
    assert all(type(rule) is hidden and rule.epsilon == 1e-3 for rule in rules.values())


def test_name_patterns_override_the_composite_and_match_either_member():
    model = random_hin(seed=0, n_features=4, hidden=8)
    composite = make_composite("epsilon", rules={"bn": "pass", "*node_mlp_2.1": "gamma:0.1"})
    rules = rules_by_name(composite, model)
    assert rules["bn"] == Pass()
    assert rules["interactionnetwork.node_model.node_mlp_2.0"] == Gamma(gamma=0.1)
    assert rules["interactionnetwork.edge_model.edge_mlp.0"] == Epsilon()
    assert Epsilon().epsilon == DEFAULT_EPSILON


def test_unknown_names_are_refused():
    model = random_hin(seed=0, n_features=4, hidden=8)
    with pytest.raises(InputError, match=r"patterns \['nolayer'\] match no layer; layers are: bn, "):
        make_composite(rules={"nolayer": "pass"}).assign(find_affine_blocks(model))
    with pytest.raises(InputError, match="unknown LRP composite 'sharp'"):
        make_composite("sharp")
