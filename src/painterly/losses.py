"""Losses of neural style transfer, as pure functions.

Notation: ``F`` is a feature map of shape (N, C, H, W), ``M = H * W`` the number of positions.

- Content loss (Gatys et al., 2016, eq. 1, as mean instead of half-sum):
  ``L_c = mean((F_y - F_c)^2)``.
- Gram matrix, normalised by the number of positions: ``G = F F^T / M`` of shape (N, C, C).
- Style loss (the seed formula): ``L_s = (1 / C^2) * sum_ij (G_s - G_y)_ij^2``, averaged over the batch.
- Mean/std style loss (Huang & Belongie, 2017, eq. 3, as MSE):
  ``L_s = mean((mu(F_y) - mu(F_s))^2) + mean((sigma(F_y) - sigma(F_s))^2)``.
- Relative errors (the benchmarks' measure, and what ``painterly tune`` minimises), per image:
  content ``|F_y - F_c| / |F_c|`` (Frobenius norms), style ``|G_y - G_s| / |G_s|`` averaged over layers.
- Total variation (squared, anisotropic): ``L_tv = mean((x[:, :, 1:] - x[:, :, :-1])^2) +
  mean((x[..., 1:] - x[..., :-1])^2)``.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

EPS = 1e-5


def _check_features(features: torch.Tensor) -> None:
    if features.ndim != 4:
        raise ValueError(f"expected features (N, C, H, W), got shape {tuple(features.shape)}")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by the number of positions: ``G = F F^T / (H W)``.

    Shape:
        - features: (N, C, H, W)
        - output: (N, C, C)

    Examples:
        >>> gram_matrix(torch.ones(1, 2, 3, 3))
        tensor([[[1., 1.],
                 [1., 1.]]])
    """
    _check_features(features)
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()  # Gram in fp32: bf16 sums of M terms lose too much
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean((F - F_target)^2)`` (mean squared error of features)."""
    if features.shape != target.shape:
        raise ValueError(f"content features {tuple(features.shape)} and target {tuple(target.shape)} differ")
    return F.mse_loss(features.float(), target.float())


def gram_style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Seed style loss: ``(1 / C^2) * sum((G(F) - G_target)^2)``, averaged over the batch.

    Args:
        features: (N, C, H, W) features of the image being optimised.
        target_gram: (N, C, C) or (1, C, C) Gram matrix of the style (see :func:`gram_matrix`).
    """
    g = gram_matrix(features)
    if target_gram.shape[-2:] != g.shape[-2:]:
        raise ValueError(f"Gram target {tuple(target_gram.shape)} does not match features with C={g.shape[-1]}")
    c = g.shape[-1]
    return ((g - target_gram.float()) ** 2).sum(dim=(1, 2)).mean() / (c * c)


def mean_std(features: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-wise mean and standard deviation over positions, each (N, C, 1, 1)."""
    _check_features(features)
    var, mean = torch.var_mean(features.float(), dim=(2, 3), keepdim=True, unbiased=False)  # one pass
    return mean, (var + eps).sqrt()


def mean_std_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """AdaIN style loss: MSE of channel means plus MSE of channel stds of two feature maps."""
    m1, s1 = mean_std(features)
    m2, s2 = mean_std(target)
    return F.mse_loss(m1, m2) + F.mse_loss(s1, s2)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Squared total variation, mean over pixels: penalises high-frequency noise."""
    _check_features(image)
    dh = image[:, :, 1:, :] - image[:, :, :-1, :]
    dw = image[:, :, :, 1:] - image[:, :, :, :-1]
    return (dh.float() ** 2).mean() + (dw.float() ** 2).mean()


def content_error(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative content error per image: ``|F - F_target| / |F_target|`` (Frobenius norms over C, H, W).

    0 = the target's features exactly. Scale-free, so it reads the same at any layer or size.

    Shape:
        - features, target: (N, C, H, W)
        - output: (N,)

    Examples:
        >>> content_error(torch.ones(2, 3, 4, 4) * 1.5, torch.ones(2, 3, 4, 4))
        tensor([0.5000, 0.5000])
    """
    if features.shape != target.shape:
        raise ValueError(f"content features {tuple(features.shape)} and target {tuple(target.shape)} differ")
    diff = (features.float() - target.float()).flatten(1).norm(dim=1)
    return diff / target.float().flatten(1).norm(dim=1).clamp_min(1e-12)


def style_error(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Relative style error per image: ``|G_l(F) - G_l^target| / |G_l^target|``, averaged over the
    layers of ``target_grams`` (Gram matrices of :func:`gram_matrix`, (N or 1, C, C) each).

    Shape:
        - features: {layer: (N, C_l, H_l, W_l)}
        - output: (N,)
    """
    errs = []
    for layer, tg in target_grams.items():
        g = gram_matrix(features[layer])
        errs.append((g - tg.float()).flatten(1).norm(dim=1) / tg.float().flatten(1).norm(dim=1).clamp_min(1e-12))
    return torch.stack(errs).mean(0)
