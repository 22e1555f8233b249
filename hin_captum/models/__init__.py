"""Models and their checkpoints: the interaction network, the GAT tagger, and weaver-core's taggers (optional)."""
from .gat import GATConfig, GATTagger
from .interaction_network import HINConfig, InteractionNetwork
from .io import ARCHITECTURES, load_model, save_model

__all__ = ["ARCHITECTURES", "GATConfig", "GATTagger", "HINConfig", "InteractionNetwork", "load_model", "save_model"]
