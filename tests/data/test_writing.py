"""write_jets: jets written as an ntuple of the schema read back by read_root as they were."""
import numpy as np
import pytest
import torch
import uproot
from torch_geometric.data import Batch

from hin_captum import InputError, bundled
from hin_captum.data import read_root
from hin_captum.data.schema import CMS_HBB
from hin_captum.data.writing import write_jets


@pytest.fixture(scope="module")
def jets():
    return Batch.from_data_list(read_root(bundled("pretrained/toy_jets.root"), max_jets=20).jets)


def test_written_jets_read_back_with_their_tracks_classes_and_spectators(jets, tmp_path):
    classes = [1] * 12 + [0] * 8
    path = write_jets(tmp_path / "out.root", jets, classes, branches={"score": np.arange(20, dtype=np.float32)})
    back = read_root(path).jets
    assert len(back) == 20 and list(tmp_path.iterdir()) == [path]
    for k, jet in enumerate(back):
        original = jets.get_example(k)
        assert torch.equal(jet.x, original.x) and torch.equal(jet.edge_index, original.edge_index)
        assert int(jet.y) == classes[k] and float(jet.fj_pt) == float(original.fj_pt)
    with uproot.open(path) as file:
        tree = file[CMS_HBB.tree]
        assert tree["score"].array(library="np").tolist() == list(range(20))
        assert tree[CMS_HBB.track_counter].array(library="np").tolist() == torch.bincount(jets.batch).tolist()


def test_one_class_per_jet_is_required(jets, tmp_path):
    with pytest.raises(InputError, match="^3 classes for 20 jets"):
        write_jets(tmp_path / "out.root", jets, [1, 1, 1])
    assert list(tmp_path.iterdir()) == []


def test_jets_go_into_the_tree_they_came_from(jets, tmp_path):
    path = write_jets(tmp_path / "out.root", jets, [1] * 20, tree="events")
    assert len(read_root(path, tree="events").jets) == 20
    with uproot.open(path) as file:
        assert file.keys(cycle=False) == ["events"]
