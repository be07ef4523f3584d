"""Training images: a folder read once into memory, sampled as random crops.

All randomness (which image, scale, crop position, flip) comes from one ``torch.Generator`` whose
state is saved in checkpoints, so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

from pathlib import Path
from typing import Collection

import torch
import torch.nn.functional as F

from ..errors import StyleTransferError
from ..image import fit_size, list_images, load_image, resize

class CropSampler:
    """Random crops from a folder of images kept in memory as uint8.

    Args:
        folder: the images (unreadable files are skipped with a warning count).
        crop: side of the square crops.
        max_side: images are first shrunk to this longest side (keeps memory bounded).
        scale: (min, max) random rescale before cropping; 1.0 = native resolution.
        exclude: file stems to leave out (held-out images); their names go to :attr:`excluded`.
        include: if given, only these file stems are read.
    """

    def __init__(self, folder: str | Path, crop: int, max_side: int = 512, scale: tuple[float, float] = (0.8, 1.0),
                 exclude: Collection[str] = (), include: Collection[str] | None = None):
        self.crop = crop
        self.scale = scale
        self.images: list[torch.Tensor] = []
        self.skipped: list[str] = []
        self.excluded: list[str] = []
        for path in list_images(folder):
            if path.stem in exclude or (include is not None and path.stem not in include):
                if path.stem in exclude:
                    self.excluded.append(path.stem)
                continue
            try:
                rgb = load_image(path).rgb
            except StyleTransferError:
                self.skipped.append(path.name)
                continue
            h, w = rgb.shape[-2:]
            if max(h, w) > max_side:
                rgb = resize(rgb, fit_size(h, w, size=max_side))
            self.images.append((rgb[0] * 255).round().to(torch.uint8))
        if not self.images:
            raise StyleTransferError(f"{folder}: none of the images could be read")

    def __len__(self) -> int:
        return len(self.images)

    def _crop(self, img: torch.Tensor, g: torch.Tensor | torch.Generator) -> torch.Tensor:
        _, h, w = img.shape
        lo, hi = self.scale
        s = lo + (hi - lo) * float(torch.rand((), generator=g))
        s = max(s, self.crop / min(h, w))  # never crop outside the image
        nh, nw = max(self.crop, round(h * s)), max(self.crop, round(w * s))
        x = img.unsqueeze(0).float() / 255.0
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top = int(torch.randint(0, nh - self.crop + 1, (), generator=g))
        left = int(torch.randint(0, nw - self.crop + 1, (), generator=g))
        x = x[..., top: top + self.crop, left: left + self.crop]
        if float(torch.rand((), generator=g)) < 0.5:
            x = x.flip(-1)
        return x.clamp(0, 1)

    def sample(self, batch: int, g: torch.Generator) -> torch.Tensor:
        """A (batch, 3, crop, crop) float batch in [0, 1]."""
        idx = torch.randint(0, len(self.images), (batch,), generator=g)
        return torch.cat([self._crop(self.images[int(i)], g) for i in idx])

    def center(self, index: int, size: int) -> torch.Tensor:
        """A deterministic (1, 3, size, size) centre crop after resizing the short side to ``size``."""
        x = self.images[index % len(self.images)].unsqueeze(0).float() / 255.0
        h, w = x.shape[-2:]
        s = size / min(h, w)
        x = resize(x, (max(size, round(h * s)), max(size, round(w * s))))
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        return x[..., top: top + size, left: left + size].clamp(0, 1)
