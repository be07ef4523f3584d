"""Training of the feed-forward (AdaIN) decoder."""
from .config import STYLE_LAYERS, TrainConfig
from .trainer import Trainer

__all__ = ["STYLE_LAYERS", "TrainConfig", "Trainer"]
