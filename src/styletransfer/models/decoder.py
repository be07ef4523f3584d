"""The AdaIN decoder: mirrors VGG19 from relu4_1 back to an RGB image.

    (N, 512, H/8, W/8)  relu4_1-like features (divided by ``input_scale``)
      conv 512->256, up x2                          (N, 256, H/4, W/4)
      conv 256->256 x3, conv 256->128, up x2        (N, 128, H/2, W/2)
      conv 128->128, conv 128->64, up x2            (N, 64, H, W)
      conv 64->64, conv 64->3                       (N, 3, H, W)  RGB, about [0, 1]

Each conv is 3x3 with reflection padding (zero padding leaves dark borders) followed by ReLU,
except the last. Upsampling is nearest-neighbour then conv, not transposed convolution: that
avoids the checkerboard artefacts of strided deconvolutions (Odena et al., 2016). ``width``
scales every hidden width (1.0 = the paper's decoder).
"""
from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    return layers + [nn.ReLU()] if relu else layers


class Decoder(nn.Module):
    """AdaIN decoder.

    Args:
        in_channels: channels of the encoder features (512 for VGG19 relu4_1).
        width: multiplier of the hidden widths (256, 128, 64 at 1.0).
        input_scale: features are divided by this before the first conv; the VGG19 Caffe
            features are in the hundreds, and this keeps the first layer's inputs near unit scale.

    Shape:
        - Input: (N, in_channels, h, w)
        - Output: (N, 3, 8h, 8w)

    Examples:
        >>> Decoder(in_channels=32, width=0.125)(torch.rand(1, 32, 4, 4)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(self, in_channels: int = 512, width: float = 1.0, input_scale: float = 1.0) -> None:
        super().__init__()
        c3, c2, c1 = (max(4, int(round(c * width))) for c in (256, 128, 64))
        self.config = {"in_channels": in_channels, "width": width, "input_scale": float(input_scale)}
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        self.net = nn.Sequential(
            *_conv(in_channels, c3), up(),
            *_conv(c3, c3), *_conv(c3, c3), *_conv(c3, c3), *_conv(c3, c2), up(),
            *_conv(c2, c2), *_conv(c2, c1), up(),
            *_conv(c1, c1), *_conv(c1, 3, relu=False),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features / self.input_scale.to(features.dtype))
