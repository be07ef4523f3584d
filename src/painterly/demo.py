"""Built-in demo images: a content photo from scikit-image and a style painted by code.

The style, "swirls", imitates the brushwork of a night-sky painting: short, thick strokes that
follow a field of vortices, in cobalt blues with yellow and white highlights. It is made by line
integral convolution (LIC): white noise smeared along the streamlines of a vector field, which
gives exactly the look of paint dragged by a brush, then coloured through a palette by a smooth
field plus the stroke texture. No file is shipped; the same seed always gives the same picture.
"""
from __future__ import annotations

import numpy as np
import torch

from .image import from_array

CONTENT_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")

# The swirls' vortices are large, high-contrast shapes that take over the picture at the
# library's default style weight (20): at 512 px the astronaut's face became a cartoon and the
# shuttle and flag vanished. At 5 the face, suit patch, shuttle and helmet stay readable under
# the same strong brushwork (compared by eye at 20 and 5, with 2x finer strokes, and with 1.5x
# smaller vortices; only the weight helped).
DEMO_STYLE_WEIGHT = 5.0

# Palette: night blues to yellow/white highlights (RGB 0..1), position in [0, 1].
_PALETTE = np.array([
    (0.00, 0.03, 0.06, 0.22),
    (0.30, 0.06, 0.20, 0.52),
    (0.52, 0.16, 0.42, 0.78),
    (0.68, 0.45, 0.66, 0.86),
    (0.80, 0.93, 0.82, 0.30),
    (0.92, 0.99, 0.93, 0.55),
    (1.00, 1.00, 1.00, 0.92),
], dtype=np.float32)


def content_photo(name: str = "astronaut") -> torch.Tensor:
    """A scikit-image bundled photo as a (1, 3, H, W) tensor in [0, 1]."""
    import skimage.data

    if name not in CONTENT_PHOTOS:
        raise ValueError(f"unknown demo photo {name!r}; choose from {', '.join(CONTENT_PHOTOS)}")
    return from_array(getattr(skimage.data, name)())


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [-1, 1] (bicubic-upsampled random grid)."""
    grid = torch.from_numpy(rng.uniform(-1, 1, (1, 1, cells + 3, cells + 3)).astype(np.float32))
    up = torch.nn.functional.interpolate(grid, size=(size + 3 * size // cells,) * 2, mode="bicubic",
                                         align_corners=False)
    off = size // cells
    return up[0, 0, off:off + size, off:off + size].numpy()


def swirl_style(size: int = 512, seed: int = 7, detail: float = 2.0) -> torch.Tensor:
    """Procedural "swirling brushstrokes" painting, (1, 3, size, size) in [0, 1].

    ``detail`` sets how many vortices and colour patches fit across the picture (their size is
    ``1/detail`` of that at 1.0); the strokes keep their width in pixels.
    """
    rng = np.random.default_rng(seed)
    k = max(0.25, float(detail))
    n = size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    # Vector field: a few vortices plus a gentle drift, like wind in a night sky.
    vx = np.full((n, n), 0.6, np.float32)
    vy = 0.15 * _smooth_noise(rng, n, max(2, round(3 * k)))
    for _ in range(max(1, round(7 * k * k))):
        cx, cy = rng.uniform(0.02, 0.98, 2)
        r = rng.uniform(0.08, 0.22) / k
        s = rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0)
        dx, dy = xx - cx, yy - cy
        d2 = dx * dx + dy * dy
        fall = np.exp(-d2 / (2 * r * r)) * s
        vx += -dy / r * fall
        vy += dx / r * fall
    norm = np.sqrt(vx * vx + vy * vy) + 1e-6
    vx, vy = vx / norm, vy / norm
    # Line integral convolution of coarse noise (strokes are a few px wide).
    stroke = max(1, round(n / 170 / k ** 0.5))
    coarse = rng.random((n // stroke + 1, n // stroke + 1)).astype(np.float32)
    noise = np.kron(coarse, np.ones((stroke, stroke), np.float32))[:n, :n]
    length = max(6, round(n / 22 / k))
    acc = noise.copy()
    for sign in (1.0, -1.0):
        px, py = xx * n, yy * n
        for _ in range(length):
            ix = np.clip(px.astype(np.int32), 0, n - 1)
            iy = np.clip(py.astype(np.int32), 0, n - 1)
            px = px + sign * vx[iy, ix]
            py = py + sign * vy[iy, ix]
            ix = np.clip(px.astype(np.int32), 0, n - 1)
            iy = np.clip(py.astype(np.int32), 0, n - 1)
            acc += noise[iy, ix]
    lic = acc / (2 * length + 1)
    lic = (lic - lic.mean()) / (lic.std() + 1e-6)
    # Colour: a smooth field decides blue vs. yellow regions, the strokes modulate it.
    field = (0.5 + 0.28 * _smooth_noise(rng, n, max(2, round(4 * k)))
             + 0.12 * _smooth_noise(rng, n, max(3, round(9 * k))))
    # A few bright "stars" with halos.
    for _ in range(max(1, round(5 * k * k))):
        cx, cy = rng.uniform(0.05, 0.95, 2)
        r = rng.uniform(0.03, 0.07) / k
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        field += 0.55 * np.exp(-(d / r) ** 2)
    t = np.clip(field + 0.16 * lic, 0, 1)
    rgb = np.stack([np.interp(t, _PALETTE[:, 0], _PALETTE[:, k]) for k in (1, 2, 3)], axis=-1)
    # Paint relief: darken stroke edges slightly.
    rgb *= (0.82 + 0.18 * np.clip(0.5 + 0.35 * lic, 0, 1))[..., None]
    return from_array(np.clip(rgb, 0, 1).astype(np.float32))
