"""The fast pipeline as exportable modules (the graphs of the ONNX export and of the onnxruntime
backend); see ``painterly/export.py`` for the files an app embeds.

    StyleEncoderGraph   style (N, 3, H, W) -> statistics (N, K): each level's, concatenated
    StylizerGraph       (content, statistics, alpha) -> image: the whole cascade
    EncoderGraph        image -> one level's features (the backend's tiles)

Statistics, per level (deepest first; :func:`layout` says where each sits), C = its channels:

- AdaIN: ``[mean (C), std (C)]`` (2 C values);
- WCT: ``[mean (C), colouring matrix (C x C, row-major)]`` (C + C^2 values), the matrix square
  root of the style's covariance by Newton-Schulz (``models/wct.py``), as is the content's
  inverse square root in the stylizer: matrix products only, so WCT runs in ONNX and a browser.

Both are linear in what they blend: ``sum_k w_k statistics_k`` (weights summing to 1) gives the
library's blend of several styles' transforms exactly.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..encoders.vgg import layer_channels
from ..losses import mean_std
from ..models.decoder import deepest_first
from ..models.wct import newton_schulz_sqrt
from .tiles import LAYER, MARGIN

FORMAT_VERSION = 3  # 3: flat statistics with WCT levels (2: (N, 2, sum C) AdaIN only; 1: relu4_1 only)

__all__ = ["EncoderGraph", "FORMAT_VERSION", "StyleEncoderGraph", "StylizerGraph", "layout", "statistics_size"]


def _pad8(x: torch.Tensor) -> torch.Tensor:
    """Reflection-pad the bottom/right to multiples of 8 (relu4_1 has stride 8)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="reflect")


def statistics_size(kind: str, c: int) -> int:
    """Values a level's statistics take: ``2 C`` for AdaIN, ``C + C^2`` for WCT."""
    return 2 * c if kind == "adain" else c + c * c


def _mean_cov(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, h, w) -> mean (N, C, 1) and covariance (N, C, C) over positions (unbiased, as
    ``models/wct.py``)."""
    n, c = f.shape[:2]
    x = f.float().reshape(n, c, -1)
    mean = x.mean(2, keepdim=True)
    x = x - mean
    return mean, x @ x.transpose(1, 2) / (x.shape[2] - 1)


def _style_stats(f: torch.Tensor, kind: str) -> torch.Tensor:
    """(N, C, h, w) style features -> (N, statistics_size) of one level."""
    if kind == "adain":
        mean, std = mean_std(f)
        return torch.cat([mean.flatten(1), std.flatten(1)], dim=1)
    mean, cov = _mean_cov(f)
    colour, _ = newton_schulz_sqrt(cov)
    return torch.cat([mean.flatten(1), colour.flatten(1)], dim=1)


def _transform(f: torch.Tensor, stats: torch.Tensor, kind: str, c: int) -> torch.Tensor:
    """(1, C, h, w) content features and (1, statistics_size) of a style -> target features."""
    if kind == "adain":
        mean, std = mean_std(f)
        s_mean, s_std = stats[:, :c, None, None], stats[:, c:, None, None]
        return (f - mean) / std * s_std + s_mean
    mean, cov = _mean_cov(f)
    _, whiten = newton_schulz_sqrt(cov)
    s_mean, colour = stats[:, :c, None], stats[:, c:].reshape(-1, c, c)
    x = f.reshape(1, c, -1)
    return ((colour @ whiten) @ (x - mean) + s_mean).reshape(f.shape)


class StyleEncoderGraph(nn.Module):
    """style (N, 3, H, W) in [0, 1] -> statistics (N, K): each level's (AdaIN or WCT, see the
    module docstring), concatenated deepest first, from one encoder pass."""

    def __init__(self, encoder: nn.Module, levels: Sequence[str] = (LAYER,),
                 kinds: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = deepest_first(levels)
        self.kinds = [(kinds or {}).get(lv, "adain") for lv in self.levels]

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(_pad8(style), self.levels)
        return torch.cat([_style_stats(feats[lv], kind) for lv, kind in zip(self.levels, self.kinds)], dim=1)


class StylizerGraph(nn.Module):
    """(content, statistics, alpha) -> image: for each level, deepest first, the encoder to that
    level, the level's transform (AdaIN or WCT) with its slice of the statistics, alpha blend, the
    level's decoder; all in [0, 1] RGB (see the module docstring).

    Shape:
        - content: (1, 3, H, W); statistics: (1, K); alpha: (1,)
        - output: (1, 3, H, W)
    """

    def __init__(self, encoder: nn.Module, decoders: Mapping[str, nn.Module], channels: Mapping[str, int],
                 kinds: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = deepest_first(decoders)
        self.decoders = nn.ModuleDict({lv: decoders[lv] for lv in self.levels})
        self.channels = [int(channels[lv]) for lv in self.levels]
        self.kinds = [(kinds or {}).get(lv, "adain") for lv in self.levels]

    def forward(self, content: torch.Tensor, statistics: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        m = MARGIN  # the mirrored margin of stylize_fast: keeps VGG's border frame out of the picture
        x = _pad8(F.pad(content, (m, m, m, m), mode="reflect"))
        offset = 0
        for level, c, kind in zip(self.levels, self.channels, self.kinds):
            f = self.encoder(x, [level])[level]  # (1, C, H/s, W/s)
            size = statistics_size(kind, c)
            t = _transform(f, statistics[:, offset: offset + size], kind, c)
            offset += size
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


def layout(encoder: nn.Module, levels: Sequence[str], kinds: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Where each level's statistics sit in the flat vector: [{layer, channels, transform, offset, size}]."""
    out, offset = [], 0
    for level in deepest_first(levels):
        c = layer_channels(level, getattr(encoder, "width_divisor", 1))
        kind = (kinds or {}).get(level, "adain")
        size = statistics_size(kind, c)
        out.append({"layer": level, "channels": c, "transform": kind, "offset": offset, "size": size})
        offset += size
    return out
