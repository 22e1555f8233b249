"""What an attribution run writes: the relevance table, a ROOT friend tree of the input and a PyTorch copy."""
from .files import EDGE_COUNTER, TRACK_COUNTER, friend_arrays, write_relevance
from .table import PREDICTED, RelevanceTable, explain_jets, target_choices, target_class

__all__ = [
    "EDGE_COUNTER", "PREDICTED", "RelevanceTable", "TRACK_COUNTER", "explain_jets", "friend_arrays",
    "target_choices", "target_class", "write_relevance",
]
