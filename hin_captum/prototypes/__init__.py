"""On-manifold prototypes: real jets moved until the model is sure they are the target class, kept on the data."""
from .manifold import TrackManifold
from .optimize import Prototypes, prototype

__all__ = ["Prototypes", "TrackManifold", "prototype"]
