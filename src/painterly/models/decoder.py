"""Decoders that mirror VGG19 from a feature layer back to an RGB image.

The relu4_1 decoder of AdaIN (Huang & Belongie, 2017) and of Universal Style Transfer (Li et al.,
2017)::

    (N, 512, H/8, W/8)  relu4_1-like features (divided by ``input_scale``)
      conv 512->256, up x2                          (N, 256, H/4, W/4)
      conv 256->256 x3                                                    <- relu3_1 enters here
      conv 256->128, up x2                          (N, 128, H/2, W/2)
      conv 128->128                                                       <- relu2_1 enters here
      conv 128->64, up x2                           (N, 64, H, W)
      conv 64->64                                                         <- relu1_1 enters here
      conv 64->3                                    (N, 3, H, W)  RGB, about [0, 1]

The decoders of the shallower layers (``level="relu3_1"``, ``"relu2_1"``, ``"relu1_1"``) are the
tails of that stack, as in Universal Style Transfer's multi-level decoders: relu3_1 starts at
``conv 256->128, up``, relu2_1 at ``conv 128->64, up``, relu1_1 is the last ``conv 64->3``.

Each conv is 3x3 with reflection padding (zero padding leaves dark borders) followed by ReLU,
except the last. The padding is the conv's own ``padding_mode="reflect"``, not a separate
``ReflectionPad2d`` module: same result, measured ~20 % less time for the decoder's forward +
backward (batch 4, 192^2, one AVX2 core: 10.7 s vs 14.0 s). Files saved with the old layout load
unchanged (their keys are renamed on load): the shipped model does not need it, but the start of
its recipe does (MODEL_CARD.md resumes ``../shared/models/adain-v1``, an old-layout checkpoint),
and so do the benchmarks' examples that run that decoder. Upsampling is nearest-neighbour then conv, not transposed convolution: that
avoids the checkerboard artefacts of strided deconvolutions (Odena et al., 2016). ``width``
scales every hidden width (1.0 = the paper's decoder).

Initialisation: PyTorch's default conv init shrinks the signal ~0.4x per conv, so a fresh
9-conv decoder outputs a near-constant image whatever its input (measured: mean |D(a) - D(b)| =
0.0003 for two different inputs) and learns slowly. :func:`kaiming_init` keeps the signal's scale
through the stack (He et al., 2015) and starts the output near mid-grey.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def deepest_first(levels) -> list[str]:
    """Levels in the order the cascade runs them: relu4_1, relu3_1, relu2_1, relu1_1 (duplicates
    dropped).

    Examples:
        >>> deepest_first(["relu1_1", "relu4_1", "relu2_1"])
        ['relu4_1', 'relu2_1', 'relu1_1']
    """
    return sorted(set(levels), key=LEVELS.index, reverse=True)


def by_level(decoder) -> dict:
    """``{level: decoder}`` of a decoder (its ``level`` attribute, relu4_1 if it has none) or of a
    mapping that already is one (a copy)."""
    if isinstance(decoder, Mapping):
        return dict(decoder)
    return {getattr(decoder, "level", "relu4_1"): decoder}  # a Decoder, or a stand-in (onnxruntime)


# Scale factor between a level's feature map and the image.
LEVEL_STRIDE = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8}


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")]
    return layers + [nn.ReLU()] if relu else layers


def _legacy_conv_indices(net: nn.Sequential) -> list[int]:
    """Where each conv of ``net`` sat in the old layout, which had a ReflectionPad2d before each conv."""
    old, idx = [], 0
    for m in net:
        if isinstance(m, nn.Conv2d):
            idx += 1  # the pad module
            old.append(idx)
        idx += 1
    return old


def kaiming_init(module: nn.Module, last_gain: float = 0.1, last_bias: float = 0.45) -> nn.Module:
    """Kaiming-normal (fan_in, ReLU) conv weights with zero biases; the last conv x ``last_gain``
    with bias ``last_bias`` so the first outputs are mid-grey with small, input-dependent detail.

    Returns the module (changed in place: it is a freshly built network, not a caller's tensor).
    """
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for m in convs:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        convs[-1].weight.mul_(last_gain)
        convs[-1].bias.fill_(last_bias)
    return module


class Decoder(nn.Module):
    """VGG19 mirror decoder from ``level`` to RGB.

    Args:
        in_channels: channels of the encoder features (512 for VGG19 relu4_1, 256 for relu3_1...).
        width: multiplier of the hidden widths (256, 128, 64 at 1.0).
        input_scale: features are divided by this before the first conv; the VGG19 Caffe
            features are in the hundreds, and this keeps the first layer's inputs near unit scale.
        level: the encoder layer it inverts (``relu1_1`` ... ``relu4_1``).

    Shape:
        - Input: (N, in_channels, h, w)
        - Output: (N, 3, s*h, s*w), s = 8, 4, 2, 1 for relu4_1, relu3_1, relu2_1, relu1_1

    Examples:
        >>> Decoder(in_channels=32, width=0.125)(torch.rand(1, 32, 4, 4)).shape
        torch.Size([1, 3, 32, 32])
        >>> Decoder(in_channels=16, width=0.125, level="relu3_1")(torch.rand(1, 16, 4, 4)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, in_channels: int = 512, width: float = 1.0, input_scale: float = 1.0,
                 level: str = "relu4_1") -> None:
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        c3, c2, c1 = (max(4, int(round(c * width))) for c in (256, 128, 64))
        self.level = level
        self.config = {"in_channels": in_channels, "width": width, "input_scale": float(input_scale),
                       "level": level}
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        if level == "relu4_1":
            layers = [*_conv(in_channels, c3), up(), *_conv(c3, c3), *_conv(c3, c3), *_conv(c3, c3),
                      *_conv(c3, c2), up(), *_conv(c2, c2), *_conv(c2, c1), up(), *_conv(c1, c1)]
        elif level == "relu3_1":
            layers = [*_conv(in_channels, c2), up(), *_conv(c2, c2), *_conv(c2, c1), up(), *_conv(c1, c1)]
        elif level == "relu2_1":
            layers = [*_conv(in_channels, c1), up(), *_conv(c1, c1)]
        else:
            layers = []
        last_in = c1 if layers else in_channels
        self.net = nn.Sequential(*layers, *_conv(last_in, 3, relu=False))
        self._register_load_state_dict_pre_hook(self._rename_legacy_keys)

    def _rename_legacy_keys(self, state_dict, prefix, *args) -> None:
        new = [i for i, m in enumerate(self.net) if isinstance(m, nn.Conv2d)]
        old = _legacy_conv_indices(self.net)
        if f"{prefix}net.{old[0]}.weight" not in state_dict or old == new:
            return
        for o, n in zip(old, new):  # ascending, and every old index > its new one: no clobbering
            for part in ("weight", "bias"):
                state_dict[f"{prefix}net.{n}.{part}"] = state_dict.pop(f"{prefix}net.{o}.{part}")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features / self.input_scale.to(features.dtype))
