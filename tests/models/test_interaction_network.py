"""The interaction network and its checkpoints."""
import pytest
import torch

from hin_captum import InputError, InteractionNetwork, load_model, save_model
from tests.conftest import REFERENCE_LOGITS_HBB
from tests.factories import jet_batch, random_hin


def test_state_dict_keys_are_those_of_the_hin_lrp_checkpoint(reference_dir):
    reference = torch.load(reference_dir / "hin_lrp_IN.pth", map_location="cpu", weights_only=True)
    ours = InteractionNetwork().state_dict()
    assert set(ours) == set(reference)
    assert all(ours[key].shape == reference[key].shape for key in ours)


def test_hin_lrp_checkpoint_reproduces_the_real_logits(reference_dir, real_jets):
    model = load_model(reference_dir / "hin_lrp_IN.pth")
    assert not model.training
    for jet, expected in zip(real_jets, REFERENCE_LOGITS_HBB):
        logits = model(jet.x, jet.edge_index)
        assert logits.shape == (1, 2)
        assert logits[0, 1].item() == pytest.approx(expected, abs=1e-4)


def test_batched_forward_equals_one_graph_at_a_time():
    model = random_hin(seed=0)
    data = jet_batch([5, 1, 9], seed=0)
    together = model(data.x, data.edge_index, data.batch)
    alone = torch.cat([model(jet.x, jet.edge_index) for jet in data.to_data_list()])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_sizes_come_from_the_config():
    model = InteractionNetwork.from_config({"n_features": 5, "hidden": 8, "n_classes": 3})
    data = jet_batch([3, 4], n_features=5)
    assert model.eval()(data.x, data.edge_index, data.batch).shape == (2, 3)


def test_save_and_load_round_trip(tmp_path):
    model = random_hin(seed=1, n_features=6, hidden=16)
    path = save_model(model, tmp_path / "model.pt", trained_on="nothing")
    loaded = load_model(path)
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_bare_state_dict_sizes_are_inferred(tmp_path):
    model = random_hin(seed=2, n_features=6, hidden=16)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    assert load_model(tmp_path / "bare.pth").config == model.config


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda sd: sd.pop("bn.weight"), "missing keys bn.weight"),
        (lambda sd: sd.update(extra=torch.zeros(1)), "unexpected keys extra"),
        (lambda sd: sd.update({"bn.running_mean": torch.zeros(47)}), r"mismatched shapes bn.running_mean \(47,\)"),
    ],
)
def test_checkpoints_that_do_not_fit_name_the_keys(tmp_path, mangle, message):
    state_dict = InteractionNetwork().state_dict()
    mangle(state_dict)
    torch.save(state_dict, tmp_path / "bad.pth")
    with pytest.raises(InputError, match=message):
        load_model(tmp_path / "bad.pth")


def test_missing_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="no such checkpoint"):
        load_model(tmp_path / "absent.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="cannot be loaded as a weights-only PyTorch checkpoint"):
        load_model(tmp_path / "text.pt")


def test_a_pickled_object_is_never_unpickled(tmp_path):
    torch.save({"model": InteractionNetwork()}, tmp_path / "pickled.pt")  # a full module needs unpickling
    with pytest.raises(InputError, match="weights-only"):
        load_model(tmp_path / "pickled.pt")


def test_a_checkpoint_loads_onto_the_device_it_is_mapped_to(tmp_path):
    """On a GPU machine ``map_location="cuda"`` must give a model on the GPU; "meta" checks the same path here."""
    path = save_model(InteractionNetwork(n_features=5, hidden=6), tmp_path / "model.pt")

    model = load_model(path, map_location="meta")

    assert {tensor.device.type for tensor in [*model.parameters(), *model.buffers()]} == {"meta"}
    assert not model.training
