"""A small photo collection for the batch tests: nested folders, good photos of several types, a
truncated JPEG, a text file named like a PNG, a file that is not an image by name, a hidden file,
and three paintings."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

GOOD = ("x.jpg", "a/y.png", "a/b/z.jpg", "a/b/w.png", "c/v.webp")
BAD = ("a/b/trunc.jpg", "a/fake.png")
IGNORED = ("a/notes.txt", ".hidden.png")
STYLES = ("s1.png", "s2.png", "s3.jpg")


def _smooth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    coarse = rng.random((h // 8 + 1, w // 8 + 1, 3))
    img = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
    return (np.clip(img * 0.9 + 0.1 * rng.random((h, w, 3)), 0, 1) * 255).astype(np.uint8)


def make_tree(root: Path, size: tuple[int, int] = (40, 56)) -> tuple[Path, Path]:
    """Write ``root/in`` (the photos) and ``root/styles``; returns both folders."""
    rng = np.random.default_rng(7)
    src, styles = root / "in", root / "styles"
    for rel in GOOD:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_smooth(rng, *size)).save(src / rel)
    data = (src / "x.jpg").read_bytes()
    (src / "a/b/trunc.jpg").write_bytes(data[: len(data) // 2])
    (src / "a/fake.png").write_text("not an image at all")
    (src / "a/notes.txt").write_text("notes")
    Image.fromarray(_smooth(rng, *size)).save(src / ".hidden.png")
    styles.mkdir(parents=True, exist_ok=True)
    for name in STYLES:
        Image.fromarray(_smooth(rng, 64, 64)).save(styles / name)
    return src, styles


def pixels(path: Path) -> np.ndarray:
    """An image file's pixels as int16 (so differences do not wrap)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def temp_files(folder: Path) -> list[Path]:
    """Temporary files (atomic writes' ``.NAME.XXXXXXXX.tmp``) anywhere under ``folder``."""
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp")]
