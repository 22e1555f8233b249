"""Fully connected jet graphs."""
import itertools

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from hin_captum.data import fully_connected_edge_index, jet_graph, knn_edge_index
from hin_captum.data.graphs import jet_batch
from hin_captum.util import InputError


@pytest.mark.parametrize("n_nodes", range(8))
def test_edges_are_all_ordered_pairs_source_major(n_nodes):
    expected = [[source, target] for source, target in itertools.product(range(n_nodes), repeat=2) if source != target]

    edge_index = fully_connected_edge_index(n_nodes)

    assert edge_index.dtype == torch.long
    assert edge_index.shape == (2, n_nodes * (n_nodes - 1))
    assert edge_index.t().tolist() == expected


def test_negative_node_count_is_an_input_error():
    with pytest.raises(InputError, match="non-negative"):
        fully_connected_edge_index(-1)


def test_jet_graph_holds_features_label_and_extras():
    features = np.arange(12, dtype=np.float64).reshape(4, 3)

    graph = jet_graph(features, 1, fj_pt=torch.tensor([450.0]))

    assert graph.x.dtype == torch.float32 and graph.x.tolist() == features.tolist()
    assert torch.equal(graph.edge_index, fully_connected_edge_index(4))
    assert graph.y.dtype == torch.long and graph.y.tolist() == [1]
    assert graph.fj_pt.tolist() == [450.0]


def test_jet_graph_copies_its_features():
    features = torch.zeros(3, 2)
    graph = jet_graph(features, 0)

    features += 1

    assert graph.x.sum() == 0


def test_jet_graph_rejects_a_non_matrix():
    with pytest.raises(InputError, match=r"\[tracks, features\]"):
        jet_graph(torch.zeros(5), 0)


def test_batching_offsets_edges_but_not_bookkeeping_indices():
    first = jet_graph(torch.zeros(3, 2), 0, file_index=torch.tensor([1]), track_index=torch.tensor([0, 4, 7]))
    second = jet_graph(torch.ones(2, 2), 1, file_index=torch.tensor([0]), track_index=torch.tensor([2, 3]))

    batch = Batch.from_data_list([first, second])

    assert batch.edge_index[:, first.edge_index.shape[1]:].min() == 3  # second graph's nodes follow the first's
    assert batch.file_index.tolist() == [1, 0]
    assert batch.track_index.tolist() == [0, 4, 7, 2, 3]
    assert batch.y.tolist() == [0, 1]


def test_edge_order_matches_the_public_hin_lrp_jets(real_jets):
    for jet in real_jets:
        assert torch.equal(fully_connected_edge_index(jet.num_nodes), jet.edge_index)


def test_knn_edges_link_each_node_to_its_nearest_neighbours_in_its_own_graph():
    generator = torch.Generator().manual_seed(0)
    pos = torch.rand(11, 2, generator=generator)
    batch = torch.tensor([0] * 6 + [1] * 3 + [2] * 2)

    edge_index = knn_edge_index(pos, batch, k=3)

    expected = set()
    for node in range(len(pos)):
        others = [j for j in range(len(pos)) if batch[j] == batch[node] and j != node]
        others.sort(key=lambda j: float((pos[j] - pos[node]).norm()))
        expected |= {(j, node) for j in others[:3]}
    assert set(map(tuple, edge_index.t().tolist())) == expected
    assert edge_index.shape[1] == 6 * 3 + 3 * 2 + 2 * 1


@pytest.mark.parametrize("n_nodes", [0, 1])
def test_knn_edges_of_a_lone_node_are_empty(n_nodes):
    assert knn_edge_index(torch.zeros(n_nodes, 2), k=4).shape == (2, 0)


def test_a_jet_batch_from_flat_arrays_equals_the_data_list_route():
    counts = [3, 1, 5, 2, 0, 4]
    x = torch.randn(sum(counts), 6, generator=torch.Generator().manual_seed(0))
    listed = Batch.from_data_list([Data(x=part, edge_index=fully_connected_edge_index(len(part)))
                                   for part in x.split(counts)])

    built = jet_batch(x.numpy(), np.array(counts), "cpu", label=np.arange(6))

    for key in ("x", "edge_index", "batch", "ptr"):
        assert torch.equal(built[key], listed[key]), key
    assert built.num_graphs == 6 and built.label.tolist() == list(range(6))
    with pytest.raises(InputError, match="do not add up"):
        jet_batch(x[:-1], counts)
