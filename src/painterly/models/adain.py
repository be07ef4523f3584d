"""Adaptive instance normalisation (Huang & Belongie, "Arbitrary Style Transfer in Real-time with
Adaptive Instance Normalization", ICCV 2017, eq. 8)::

    AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y)

with channel-wise mean and std over positions. ``alpha`` blends with the content features
(eq. 14): ``t = alpha * AdaIN(x, y) + (1 - alpha) * x``.
"""
from __future__ import annotations

import torch

from ..losses import mean_std


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Re-normalise ``content`` features to the channel mean/std of ``style`` features.

    Shape:
        - content: (N, C, H, W)
        - style: (N or 1, C, H', W')
        - output: (N, C, H, W)
    """
    if content.shape[1] != style.shape[1]:
        raise ValueError(f"content has {content.shape[1]} channels, style {style.shape[1]}")
    c_mean, c_std = mean_std(content, eps)
    s_mean, s_std = mean_std(style, eps)
    return ((content.float() - c_mean) / c_std * s_std + s_mean).to(content.dtype)


def adain_affine(content: torch.Tensor, s_mean: torch.Tensor, s_std: torch.Tensor,
                 eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaIN as a per-channel affine map: ``AdaIN(x) = scale * x + shift`` with
    ``scale = sigma(y) / sigma(x)`` and ``shift = mu(y) - scale * mu(x)``, each (N, C, 1, 1).

    Being affine, the maps of several styles (and alpha) blend into one before touching the
    features: one pass over a big feature map instead of one per style.
    """
    c_mean, c_std = mean_std(content, eps)
    scale = s_std / c_std
    return scale, s_mean - scale * c_mean
