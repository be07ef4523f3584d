"""PatchGAN discriminator (Isola et al., "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017): a stack of stride-2 4x4 convs whose output is a map of real/fake logits,
one per overlapping patch, so it judges texture (what style is about) rather than layout.

    (N, 3, H, W) -> conv 3->64 /2 -> conv 64->128 /2 -> conv 128->256 /2 -> conv 256->1
    -> (N, 1, H/8 - 1, W/8 - 1) logits

Spectral normalisation keeps it Lipschitz so a small CPU training budget does not let it win
outright and stop giving the decoder gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator on RGB [0, 1] images.

    Args:
        width: channels of the first layer (64 in the paper).
        n_layers: number of stride-2 downsampling convs.

    Shape:
        - Input: (N, 3, H, W)
        - Output: (N, 1, h, w) patch logits
    """

    def __init__(self, width: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i in range(n_layers):
            cout = width * 2**i
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image * 2.0 - 1.0)


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Discriminator loss. hinge: ``E[relu(1 - D(x))] + E[relu(1 + D(G))]``; nonsat: BCE."""
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "nonsat":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use 'hinge' or 'nonsat'")


def g_loss(fake_logits: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Generator (decoder) adversarial loss. hinge: ``-E[D(G)]``; nonsat: ``E[softplus(-D(G))]``."""
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "nonsat":
        return F.softplus(-fake_logits).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use 'hinge' or 'nonsat'")
