"""weaver-core's taggers: loaded as weaver loads them, fed jet graphs with the arrays weaver's own data pipeline builds,
and explained through the graph interface as they are on their own inputs."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

import hin_captum
from hin_captum.config import bundled
from hin_captum.data import read_root, write_toy_root
from hin_captum.lrp import LRP
from hin_captum.methods import METHODS
from hin_captum.models.weaver import PAIR_EMBEDDING, GraphTagger, load_weaver
from hin_captum.util import InputError

pytest.importorskip("weaver.nn.model.ParticleTransformer")
TOY_CONFIG = bundled("configs/weaver/toy_hbb.yaml")
NETWORKS = {"particlenet": "pretrained/particlenet_toy.pt", "part": "pretrained/part_toy.pt"}


def tagger(name: str):
    return load_weaver(bundled(f"configs/weaver/{name}.py"), TOY_CONFIG, bundled(NETWORKS[name]))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = write_toy_root(tmp_path_factory.mktemp("weaver") / "toy.root", 24, seed=21)
    return path, Batch.from_data_list(read_root(path).jets)


def test_the_graph_interface_builds_the_arrays_weavers_own_pipeline_builds(toy):
    from weaver.utils.data.fileio import _read_files
    from weaver.utils.dataset import _preprocess

    path, jets = toy
    model = tagger("part")
    config = model.data_config
    table = _read_files([str(path)], config.test_load_branches, treename=config.treename)
    arrays, _ = _preprocess(table, config, dict(training=False, shuffle=False, reweight=False, mode="test",
                                                up_sample=True, weight_scale=1, max_resample=10, batch_size=None))
    ours = GraphTagger(model).arrays(jets.x, jets.batch)
    for name, array in zip(config.input_names, ours):
        np.testing.assert_allclose(array.numpy(), arrays[f"_{name}"], rtol=1e-6, atol=1e-4)
    with torch.no_grad():
        weaver_logits = model.model(*[torch.from_numpy(arrays[f"_{name}"]) for name in config.input_names])
        # the energies differ in their last float32 digit (cosh in numpy and in torch); ParT's logarithmic pair
        # features carry that to about 1e-3 in the logits
        torch.testing.assert_close(GraphTagger(model)(jets.x, jets.edge_index, jets.batch), weaver_logits,
                                   rtol=1e-3, atol=3e-3)


@pytest.mark.parametrize("name", NETWORKS)
def test_lrp_through_the_graph_interface_equals_lrp_on_weavers_arrays(toy, name):
    """The padding into weaver's arrays (written in place) is followed by the rules: the relevance of every track
    is that of its column of weaver's feature array."""
    _, jets = toy
    model = tagger(name)
    graph = GraphTagger(model)
    points, features, vectors, mask = graph.arrays(jets.x, jets.batch)
    options = dict(epsilon=1e-9, reference="zero")
    direct = LRP(model.model, **options).attribute((points, features), target=1,
                                                   additional_forward_args=(vectors, mask))[1]
    through = hin_captum.attribute(graph, jets, target=1, **options).node
    columns = [list(hin_captum.data.schema.CMS_HBB.features).index(v) for v in graph.variables["pf_features"]]
    counts = torch.bincount(jets.batch)
    position = torch.cat([torch.arange(int(n)) for n in counts])
    dense = direct.permute(0, 2, 1)[jets.batch, position]  # [tracks, features] of weaver's array
    torch.testing.assert_close(through[:, columns], dense, rtol=1e-5, atol=1e-7)
    if name == "part":  # and the attention rules were applied: CP-LRP differs from AttnLRP
        cp = hin_captum.attribute(graph, jets, target=1, attention="cp", **options).node
        assert not torch.allclose(cp, through)


def test_part_pair_relevance_is_read_where_the_pair_features_enter_its_embedding(toy):
    _, jets = toy
    graph = GraphTagger(tagger("part"))
    lrp = LRP(graph, epsilon=1e-9, reference="zero", relevance_at=[f"tagger.{PAIR_EMBEDDING}"])
    result = lrp.propagate((jets.x,), target=1, additional_forward_args=(jets.edge_index, jets.batch))
    (pairs,) = result.inner[f"tagger.{PAIR_EMBEDDING}"]
    tracks = torch.bincount(jets.batch).clamp(max=40)
    assert pairs.relevance.shape == (1, 4, int((tracks * (tracks + 1) // 2).sum()))  # the lower triangle, per jet
    assert pairs.relevance.abs().sum() > 0
    cp = LRP(graph, epsilon=1e-9, reference="zero", attention="cp", relevance_at=[f"tagger.{PAIR_EMBEDDING}"])
    (none,) = cp.propagate((jets.x,), target=1, additional_forward_args=(jets.edge_index, jets.batch)).inner[
        f"tagger.{PAIR_EMBEDDING}"]
    assert none.relevance.abs().max() == 0  # CP-LRP: nothing flows into the softmax, so the pair bias gets none


def test_the_attention_baseline_reads_parts_class_attention(toy):
    _, jets = toy
    explanation = hin_captum.attribute(GraphTagger(tagger("part")), jets, method="attention")
    per_track = explanation.node.sum(1)
    per_jet = torch.zeros(jets.num_graphs).index_add_(0, jets.batch, per_track)
    # the class token's attention over the particles: a share of a probability (the rest is on the token itself)
    assert (per_track >= 0).all() and (per_jet > 0.5).all() and (per_jet <= 1 + 1e-6).all()


def test_bad_weaver_inputs_are_one_clear_line(tmp_path):
    network = tmp_path / "net.py"
    network.write_text("x = 1\n")
    with pytest.raises(InputError, match="defines no get_model"):
        load_weaver(network, TOY_CONFIG)
    with pytest.raises(InputError, match="does not fit the network: missing keys"):
        load_weaver(bundled("configs/weaver/part.py"), TOY_CONFIG, bundled(NETWORKS["particlenet"]))
    with pytest.raises(InputError, match="no such data config"):
        load_weaver(bundled("configs/weaver/part.py"), tmp_path / "absent.yaml")


def test_the_bundled_weaver_models_separate_fresh_toy_jets(toy):
    from hin_captum.training.metrics import roc_auc

    _, jets = toy
    for name in NETWORKS:
        with torch.no_grad():
            scores = GraphTagger(tagger(name))(jets.x, jets.edge_index, jets.batch).softmax(1)[:, 1]
        assert roc_auc(jets.y.numpy(), scores.numpy()) > 0.8
    assert "attention" in METHODS


def test_weavers_sequence_trimmer_does_not_change_the_explanation(toy):
    """With trim=True weaver's ParticleNet cuts the padding after its fifth call: the reference point (its input
    BatchNorm, found behind the padding and the cut) and the relevance stay the same."""
    _, jets = toy
    model = GraphTagger(load_weaver(bundled("configs/weaver/particlenet.py"), TOY_CONFIG, bundled(NETWORKS["particlenet"]),
                                    trim=True))
    method = METHODS["lrp"](model)
    first = method.explain(jets, 1)
    for _ in range(6):
        again = METHODS["lrp"](model).explain(jets, 1)
    assert int(model.tagger.mod.trimmer._counter) >= 5  # it trims now
    torch.testing.assert_close(again.node, first.node)
    columns = [list(hin_captum.data.schema.CMS_HBB.features).index(v) for v in model.variables["pf_features"]]
    torch.testing.assert_close(again.reference[columns], model.tagger.mod.bn_fts.running_mean)  # raw units here
    assert again.reference.abs().sum() == again.reference[columns].abs().sum()  # zero where the model reads nothing
