"""hin_captum: exact, batched layer-wise relevance propagation for graph networks, through Captum."""
from .config import bundled
from .errors import InputError
from .lrp import LRP
from .methods import Explanation, attribute
from .models import InteractionNetwork, load_model, save_model

__all__ = ["Explanation", "InputError", "InteractionNetwork", "LRP", "attribute", "bundled", "load_model",
           "save_model"]
__version__ = "0.1.0"
