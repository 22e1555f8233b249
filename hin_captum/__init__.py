"""hin_captum: exact, batched layer-wise relevance propagation for graph networks, through Captum."""
from .config import bundled
from .util import InputError
from .lrp import LRP, LRPConfig
from .methods import Explanation, attribute
from .models import InteractionNetwork, load_model, save_model
from .prototypes import Prototypes, prototype

__all__ = ["Explanation", "InputError", "InteractionNetwork", "LRP", "LRPConfig", "attribute", "bundled",
           "Prototypes", "load_model", "prototype", "save_model"]
__version__ = "0.1.0"
