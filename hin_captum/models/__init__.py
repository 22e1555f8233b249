"""Models and their checkpoints."""
from .interaction_network import HINConfig, InteractionNetwork
from .io import load_model, save_model

__all__ = ["HINConfig", "InteractionNetwork", "load_model", "save_model"]
