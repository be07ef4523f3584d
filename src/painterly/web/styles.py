"""Built-in styles of the web page: scikit-image's bundled pictures and patterns made here.

Nothing is downloaded and no picture is committed: each style is generated (deterministically)
the first time it is asked for and cached in memory with its thumbnail. "swirls" is the CLI
demo's style (:func:`painterly.demo.swirl_style`), shared rather than duplicated; its old
web name "swirl" is still accepted (:data:`ALIASES`).
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

SIDE = 512
THUMB = 192


def _noise(rng: np.random.Generator, side: int, cells: int, channels: int = 1) -> np.ndarray:
    """Smooth value noise in [0, 1]: a random cells x cells grid, bicubic-upsampled."""
    out = []
    for _ in range(channels):
        grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
        img = Image.fromarray(grid, "L").resize((side, side), Image.BICUBIC)
        out.append(np.asarray(img, dtype=np.float32) / 255.0)
    return np.stack(out, -1) if channels > 1 else out[0]


def _fbm(rng: np.random.Generator, side: int, octaves=(4, 8, 16, 32, 64)) -> np.ndarray:
    total = np.zeros((side, side), np.float32)
    amp, norm = 1.0, 0.0
    for cells in octaves:
        total += amp * _noise(rng, side, cells)
        norm += amp
        amp *= 0.55
    total /= norm
    return (total - total.min()) / (np.ptp(total) + 1e-6)


def _palette(values: np.ndarray, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """Map values in [0, 1] through colour stops -> (H, W, 3) float in [0, 1]."""
    xs = np.array([s for s, _ in stops], np.float32)
    cols = np.array([c for _, c in stops], np.float32) / 255.0
    return np.stack([np.interp(values, xs, cols[:, k]) for k in range(3)], -1)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    return y, x


def make_swirl(side: int = SIDE) -> np.ndarray:
    """Night swirls: the CLI demo's brushwork style (LIC strokes of a night-sky painting)."""
    from ..demo import swirl_style

    return _to_uint8(swirl_style(side)[0].permute(1, 2, 0).numpy())


def make_stained_glass(side: int = SIDE) -> np.ndarray:
    """Stained glass: jewel-coloured Voronoi cells in dark lead came."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(11)
    points = rng.random((140, 2)) * side
    yy, xx = np.mgrid[0:side, 0:side]
    query = np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float32)
    dist, idx = cKDTree(points).query(query, k=2)
    edge = (dist[:, 1] - dist[:, 0]).reshape(side, side)
    jewels = np.array([(180, 20, 40), (20, 60, 160), (230, 170, 20), (20, 120, 70), (120, 30, 140),
                       (240, 110, 20), (40, 150, 190), (200, 50, 110)], np.float32) / 255.0
    colours = jewels[rng.integers(0, len(jewels), len(points))]
    rgb = colours[idx[:, 0]].reshape(side, side, 3)
    shade = 0.75 + 0.45 * _fbm(rng, side, (8, 16, 64))[..., None]
    rgb = rgb * shade
    lead = np.clip((edge - 2.0) / 2.5, 0, 1)[..., None]
    rgb = rgb * lead + 0.06 * (1 - lead)
    return _to_uint8(rgb)


def make_waves(side: int = SIDE) -> np.ndarray:
    """Great waves: layered Prussian-blue swells with cream foam crests."""
    rng = np.random.default_rng(3)
    y, x = _grid(side)
    warp = _fbm(rng, side, (4, 8, 16))
    v = np.zeros_like(x)
    for k, (freq, amp, phase) in enumerate([(9.0, 0.05, 0.0), (15.0, 0.03, 1.3), (27.0, 0.015, 2.1)]):
        v += np.sin(2 * np.pi * (y * (6 + 2 * k) + amp * 20 * np.sin(freq * x + phase + 4 * warp)))
    v = (v - v.min()) / np.ptp(v)
    crest = np.clip((v - 0.82) / 0.1, 0, 1) ** 2
    fine = _noise(rng, side, 200)
    rgb = _palette(v, [(0.0, (10, 25, 60)), (0.45, (25, 70, 130)), (0.75, (90, 150, 190)), (1.0, (150, 200, 215))])
    foam = np.array([245, 236, 210], np.float32) / 255.0
    rgb = rgb * (1 - crest[..., None]) + foam * crest[..., None]
    rgb *= (0.9 + 0.2 * fine)[..., None]
    return _to_uint8(rgb)


def make_halftone(side: int = SIDE) -> np.ndarray:
    """Pop-art halftone: bold cyan, magenta and yellow dots over warm paper."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    paper = np.array([250, 240, 220], np.float32) / 255.0
    rgb = np.ones((side, side, 3), np.float32) * paper
    inks = [((0, 170, 220), 15.0, 14.0), ((230, 30, 120), 75.0, 14.0), ((250, 210, 0), 0.0, 14.0)]
    for (r, g, b), angle_deg, pitch in inks:
        a = np.deg2rad(angle_deg)
        u = (x * np.cos(a) + y * np.sin(a)) / pitch
        v = (-x * np.sin(a) + y * np.cos(a)) / pitch
        d = np.hypot(u - np.round(u), v - np.round(v))
        level = _fbm(rng, side, (3, 6, 12))
        radius = 0.12 + 0.45 * level
        dot = np.clip((radius - d) * pitch / 1.5, 0, 1)[..., None]
        ink = np.array([r, g, b], np.float32) / 255.0
        rgb = rgb * (1 - dot) + rgb * ink * dot  # multiply like ink
    return _to_uint8(rgb)


def make_embers(side: int = SIDE) -> np.ndarray:
    """Embers: glowing cracked lava, black through red to yellow."""
    rng = np.random.default_rng(13)
    n = _fbm(rng, side, (6, 12, 24, 48, 96))
    ridges = 1.0 - np.abs(2 * n - 1)
    v = np.clip(ridges ** 3 * 1.3, 0, 1)
    rgb = _palette(v, [(0.0, (5, 2, 2)), (0.3, (70, 10, 5)), (0.55, (190, 40, 10)), (0.8, (250, 140, 20)),
                       (1.0, (255, 240, 160))])
    return _to_uint8(rgb)


def _skimage(name: str, crop: tuple[int, int, int, int] | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        arr = np.asarray(getattr(skimage.data, name)())
        if crop is not None:
            y0, y1, x0, x1 = crop
            arr = arr[y0:y1, x0:x1]
        return arr[..., :3] if arr.ndim == 3 else np.repeat(arr[..., None], 3, 2)

    return load


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    title: str
    description: str
    make: Callable[[], np.ndarray]


STYLES: dict[str, BuiltinStyle] = {s.name: s for s in [
    BuiltinStyle("swirls", "Night swirls", "Swirling blue and gold brush strokes (the CLI demo's style)",
                 make_swirl),
    BuiltinStyle("stained-glass", "Stained glass", "Jewel-coloured cells in dark lead", make_stained_glass),
    BuiltinStyle("waves", "Great wave", "Layered blue swells with foam crests", make_waves),
    BuiltinStyle("halftone", "Pop halftone", "Bold comic-book ink dots", make_halftone),
    BuiltinStyle("embers", "Embers", "Glowing cracked lava", make_embers),
    BuiltinStyle("stain", "Cell stain", "Immunohistochemistry slide (scikit-image data)",
                 _skimage("immunohistochemistry")),
]}


# Old names still accepted by the API (not listed).
ALIASES = {"swirl": "swirls"}


def names() -> list[str]:
    return list(STYLES)


def canonical(name: str) -> str | None:
    """The built-in style's name for ``name`` (an alias gives its new name); ``None`` if unknown."""
    name = ALIASES.get(name, name)
    return name if name in STYLES else None


@functools.lru_cache(maxsize=None)
def style_array(name: str) -> np.ndarray:
    """The style picture as an (H, W, 3) uint8 array (KeyError for an unknown name)."""
    arr = STYLES[name].make()
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=None)
def thumbnail_jpeg(name: str) -> bytes:
    img = Image.fromarray(style_array(name))
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((THUMB, THUMB), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@functools.lru_cache(maxsize=None)
def image_jpeg(name: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(style_array(name)).save(buf, "JPEG", quality=90)
    return buf.getvalue()
