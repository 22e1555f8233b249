"""What an attribution run writes: relevance tables, friend trees of the input files, and the global summary."""
from .files import EDGE_COUNTER, TRACK_COUNTER, FriendFile, friend_arrays, read_friend_jets, read_metadata
from .summary import RelevanceSummary
from .table import RelevanceTable

__all__ = [
    "EDGE_COUNTER", "FriendFile", "RelevanceSummary", "RelevanceTable", "TRACK_COUNTER", "friend_arrays",
    "read_friend_jets", "read_metadata",
]
