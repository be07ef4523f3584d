"""The fast pipeline as exportable modules (the graphs of the ONNX export and of the onnxruntime
backend); see ``painterly/export.py`` for the files an app embeds.

    StyleEncoderGraph   style (N, 3, H, W) -> statistics (N, 2, sum C_L): [mean; std] per level
    StylizerGraph       (content, statistics, alpha) -> image: the whole AdaIN cascade
    EncoderGraph        image -> one level's features (the backend's tiles)
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..encoders.vgg import layer_channels
from ..losses import mean_std
from ..models.decoder import deepest_first
from .tiles import LAYER, MARGIN

FORMAT_VERSION = 2  # 2: statistics of every level, concatenated (1: relu4_1 only)

__all__ = ["EncoderGraph", "FORMAT_VERSION", "StyleEncoderGraph", "StylizerGraph", "layout"]


def _pad8(x: torch.Tensor) -> torch.Tensor:
    """Reflection-pad the bottom/right to multiples of 8 (relu4_1 has stride 8)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="reflect")


def _stack_stats(f: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) features -> (N, 2, C): [mean; std] over positions, as :func:`painterly.losses.mean_std`."""
    mean, std = mean_std(f)
    return torch.stack([mean.flatten(1), std.flatten(1)], dim=1)


class StyleEncoderGraph(nn.Module):
    """style (N, 3, H, W) in [0, 1] -> statistics (N, 2, sum C_L): [mean; std] of each level,
    concatenated deepest first, from one encoder pass."""

    def __init__(self, encoder: nn.Module, levels: Sequence[str] = (LAYER,)) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = deepest_first(levels)

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(_pad8(style), self.levels)
        return torch.cat([_stack_stats(feats[level]) for level in self.levels], dim=2)


class StylizerGraph(nn.Module):
    """(content, statistics, alpha) -> image: for each level, deepest first, VGG19 to that level,
    AdaIN with the level's slice of the statistics, alpha blend, the level's decoder; all in
    [0, 1] RGB (see the module docstring).

    Shape:
        - content: (1, 3, H, W); statistics: (1, 2, sum C_L); alpha: (1,)
        - output: (1, 3, H, W)
    """

    def __init__(self, encoder: nn.Module, decoders: Mapping[str, nn.Module], channels: Mapping[str, int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = deepest_first(decoders)
        self.decoders = nn.ModuleDict({lv: decoders[lv] for lv in self.levels})
        self.channels = [int(channels[lv]) for lv in self.levels]

    def forward(self, content: torch.Tensor, statistics: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        m = MARGIN  # the mirrored margin of stylize_fast: keeps VGG's border frame out of the picture
        x = _pad8(F.pad(content, (m, m, m, m), mode="reflect"))
        offset = 0
        for level, c in zip(self.levels, self.channels):
            f = self.encoder(x, [level])[level]  # (1, C, H/s, W/s)
            mean, std = mean_std(f)
            s_mean = statistics[:, 0, offset: offset + c, None, None]
            s_std = statistics[:, 1, offset: offset + c, None, None]
            offset += c
            t = (f - mean) / std * s_std + s_mean
            t = alpha * t + (1.0 - alpha) * f
            x = self.decoders[level](t).clamp(0.0, 1.0)
        return x[..., m: m + h, m: m + w]


class EncoderGraph(nn.Module):
    """image (N, 3, 8h, 8w) in [0, 1] -> one level's features (internal: the backend's tiles)."""

    def __init__(self, encoder: nn.Module, level: str = LAYER) -> None:
        super().__init__()
        self.encoder = encoder
        self.level = level

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image, [self.level])[self.level]


def layout(encoder: nn.Module, levels: Sequence[str]) -> list[dict[str, Any]]:
    """Where each level's statistics sit in the concatenated vector: [{layer, channels, offset}]."""
    out, offset = [], 0
    for level in deepest_first(levels):
        c = layer_channels(level, getattr(encoder, "width_divisor", 1))
        out.append({"layer": level, "channels": c, "offset": offset})
        offset += c
    return out
