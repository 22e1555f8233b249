"""Training the interaction network and measuring tagging performance."""
from .metrics import background_rejection, roc_auc, roc_curve
from .trainer import TrainingConfig, TrainingResult, evaluate, predict, split, train

__all__ = ["TrainingConfig", "TrainingResult", "background_rejection", "evaluate", "predict", "roc_auc",
           "roc_curve", "split", "train"]
