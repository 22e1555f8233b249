"""Jet graphs from CMS H->bb ntuples, toy ROOT files and the HIN-LRP sanity-check set."""
from .graphs import JetGraph, fully_connected_edge_index, jet_graph, knn_edge_index
from .root import ReadReport, RootJetReader, RootJets, read_root
from .synthetic import make_sanity_jets
from .toy import make_toy_jets, write_toy_root

__all__ = [
    "JetGraph",
    "ReadReport",
    "RootJetReader",
    "RootJets",
    "fully_connected_edge_index",
    "knn_edge_index",
    "jet_graph",
    "make_sanity_jets",
    "make_toy_jets",
    "read_root",
    "write_toy_root",
]
