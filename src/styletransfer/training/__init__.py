"""Training of the feed-forward (AdaIN) decoder."""
from .trainer import STYLE_LAYERS, TrainConfig, Trainer

__all__ = ["STYLE_LAYERS", "TrainConfig", "Trainer"]
