"""Image I/O and pre/post-processing.

Inside the library an image is a float tensor in [0, 1], RGB, shape (1, 3, H, W). This module
turns files into that and back:

- EXIF orientation is applied; grayscale, palette, CMYK, 16-bit and alpha inputs become RGB;
  the alpha channel is returned separately so it can be re-attached to the output.
- A pixel-count guard refuses decompression bombs before any pixel is decoded.
- Outputs are written atomically (temporary file in the same folder, then ``os.replace``) with
  the usual permissions (0644 under umask 022); an existing file is never overwritten without
  ``overwrite=True``, and an input never at all.
"""
from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_write
from .errors import ImageError, StyleTransferError

# preserve_color: transfer_luminance (exact photo colours) or match_color (the style recoloured first)
PRESERVE_COLORS = ("luminance", "histogram")
DEFAULT_MAX_INPUT_PIXELS = 80_000_000  # ~ 10K x 8K: bigger than any camera, smaller than a bomb
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF",
                ".tiff": "TIFF", ".bmp": "BMP"}

# We do our own guard; Pillow's own DecompressionBombWarning would be noise.
Image.MAX_IMAGE_PIXELS = None


@dataclass
class LoadedImage:
    """A decoded image: ``rgb`` (1, 3, H, W) in [0, 1] and ``alpha`` (1, 1, H, W) or ``None``."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.rgb.shape[-2]), int(self.rgb.shape[-1])


def _open(source: str | Path | bytes, max_pixels: int, reduce_to: int | None = None) -> Image.Image:
    name = "upload" if isinstance(source, (bytes, bytearray)) else str(source)
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image")
        fp: io.IOBase | Path = path
    else:
        fp = io.BytesIO(source)
    try:
        img = Image.open(fp)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (or a format Pillow cannot read)") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot open ({exc})") from None
    w, h = img.size
    if w * h > max_pixels:
        raise ImageError(f"{name}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}")
    if reduce_to is not None and img.format == "JPEG":
        img.draft(None, (reduce_to, reduce_to))  # decode at 1/2, 1/4 or 1/8 scale, still >= reduce_to
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None
    return img


def _to_float_array(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """PIL image of any mode -> (H, W, 3) float32 RGB in [0, 1] and (H, W) alpha or None."""
    mode = img.mode
    alpha = None
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / peak, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        gray = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba, dtype=np.float32) / 255.0
        return arr[..., :3].copy(), arr[..., 3].copy()
    if mode == "CMYK":
        # Pillow's conversion is the naive one; without an ICC profile we cannot do better.
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0, None
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0, alpha


def load_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
               reduce_to: int | None = None) -> LoadedImage:
    """Read an image file (or bytes) as RGB [0, 1] plus optional alpha.

    ``reduce_to``: the caller only needs about this longest side; a JPEG is then decoded at a
    reduced scale (its DCT scaling; both sides stay >= ``reduce_to``), which saves time and memory
    on big photos. Other formats are decoded whole.

    Raises:
        ImageError: missing, not an image, corrupt/truncated, or more than ``max_pixels`` pixels.
    """
    img = _open(source, max_pixels, reduce_to)
    rgb, alpha = _to_float_array(img)
    rgb_t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    alpha_t = None if alpha is None else torch.from_numpy(alpha)[None, None]
    if alpha_t is not None and bool((alpha_t >= 1.0).all()):
        alpha_t = None  # fully opaque: nothing to re-attach
    return LoadedImage(rgb_t, alpha_t)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly inside ``folder`` (sorted so batches and training runs repeat).

    Raises:
        ImageError: not a folder, or no file with an image extension in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def from_array(array: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, 3/4) uint8 or float array -> (1, 3, H, W) float tensor in [0, 1]."""
    arr = np.asarray(array)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).unsqueeze(0).clamp(0, 1)


def to_pil(image: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """(1, 3, H, W) [0, 1] tensor (and optional (1, 1, H, W) alpha) -> 8-bit PIL image."""
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"expected an image (1, 3, H, W), got shape {tuple(image.shape)}")
    rgb = image.detach().float().clamp(0, 1)
    if alpha is not None:
        alpha = resize(alpha.detach().float(), rgb.shape[-2:]).clamp(0, 1)
        rgb = torch.cat([rgb, alpha], dim=1)
    arr = (rgb[0].permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, "RGBA" if alpha is not None else "RGB")


def fit_size(height: int, width: int, size: int | None = None, max_pixels: int | None = None) -> tuple[int, int]:
    """Output (height, width): longest side ``size`` (if given), then at most ``max_pixels``.

    The aspect ratio is kept; both sides stay >= 1.
    """
    if size is not None:
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        scale = size / max(height, width)
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
    if max_pixels is not None and height * width > max_pixels:
        scale = math.sqrt(max_pixels / (height * width))
        height, width = max(1, int(height * scale)), max(1, int(width * scale))
    return height, width


def resize(image: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Antialiased bilinear resize of an (N, C, H, W) tensor to (height, width); returns a new tensor."""
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image.clone()
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def check_output_path(path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """Validate an image output path before any work is done (see :func:`check_output_file`).

    Raises:
        ImageError: a folder, unknown extension, folder missing or not writable, path is an
            input, or exists without ``overwrite``.
    """
    return check_output_file(path, SAVE_FORMATS, overwrite, inputs, example="out.png", noun="input image")


def check_output_file(path: str | Path, formats: Iterable[str], overwrite: bool = False,
                      inputs: Iterable[str | Path] = (), *, example: str = "out.png", noun: str = "input",
                      error: type[StyleTransferError] = ImageError) -> Path:
    """Validate an output file before any work: its type (an extension of ``formats``), that it
    is not a folder nor one of ``inputs`` (same path or same file), not taken (unless
    ``overwrite``), and that its folder exists and takes a new file (tried by creating and
    removing an empty temporary one, so a read-only folder or ``/proc/x.png`` is refused before
    a long run rather than after it). Errors are ``error``, one line each.
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder; give a file name such as {path / example}")
    if path.suffix.lower() not in formats:
        raise error(f"{path}: unsupported output type {path.suffix or '(none)'}; "
                    f"use one of {', '.join(sorted(formats))}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise error(f"{path}: folder {parent} does not exist")
    resolved = path.resolve()
    for src in inputs:
        if not isinstance(src, (str, Path)):
            continue
        src = Path(src)
        if src.resolve() == resolved or (src.exists() and path.exists() and os.path.samefile(src, path)):
            raise error(f"{path}: refusing to overwrite an {noun}")
    if path.exists() and not overwrite:
        raise error(f"{path}: already exists (pass --force to overwrite)")
    try:
        check_writable_folder(parent, what=str(path))
    except ImageError as exc:
        raise error(str(exc)) from None
    return path


def check_writable_folder(folder: str | Path, what: str | None = None) -> None:
    """Raise :class:`ImageError` unless a file can be created in ``folder`` (tried, then removed).

    The message names ``what`` (default: the folder), never the temporary file.
    """
    folder = Path(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".painterly-", suffix=".tmp", dir=folder)
    except OSError as exc:
        reason = "not writable" if exc.errno == errno.ENOENT else (exc.strerror or "not writable")
        raise ImageError(f"{what or folder}: cannot write into folder {folder} ({reason})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def save_image(
    image: torch.Tensor,
    path: str | Path,
    alpha: torch.Tensor | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    quality: int = 95,
) -> Path:
    """Write an image atomically (temp file + ``os.replace``); the format follows the extension.

    JPEG and BMP cannot hold alpha: it is composited over white there.
    """
    path = check_output_path(path, overwrite, inputs)
    fmt = SAVE_FORMATS[path.suffix.lower()]
    pil = to_pil(image, alpha)
    if fmt in ("JPEG", "BMP"):
        pil = _flatten(pil)
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic_write(path) as tmp:
            pil.save(tmp, format=fmt, **kwargs)
    except OSError as exc:  # disk full, folder gone...: name the output, not the temp file
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def _flatten(pil: Image.Image) -> Image.Image:
    """An RGBA image composited over white (for formats without alpha); others unchanged."""
    if pil.mode != "RGBA":
        return pil
    background = Image.new("RGB", pil.size, (255, 255, 255))
    background.paste(pil, mask=pil.split()[3])
    return background


def encode_image(image: torch.Tensor, fmt: str = "PNG", alpha: torch.Tensor | None = None, quality: int = 92) -> bytes:
    """Encode to PNG/JPEG/WEBP bytes (for the web API); JPEG gets alpha composited over white."""
    pil = to_pil(image, alpha)
    fmt = fmt.upper()
    if fmt in ("JPEG", "BMP"):
        pil = _flatten(pil)
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


# --- colour --------------------------------------------------------------------------------

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> YIQ (Y = luminance, I/Q = chroma)."""
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yiq`."""
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YIQ).to(image), image)


def transfer_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the content's colours: the stylized luminance with the content's chroma (Gatys et al.,
    "Preserving Color in Neural Artistic Style Transfer", 2016, luminance-only transfer)."""
    content = resize(content, stylized.shape[-2:])
    y = rgb_to_yiq(stylized)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0, 1)


def match_color(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Recolour ``source`` so its RGB mean and covariance match ``target``'s.

    Uses the symmetric square-root transform ``A = C_t^{1/2} C_s^{-1/2}`` (as in Gatys et al.
    2016, colour histogram matching, linear variant). Returns a new tensor in [0, 1].
    """
    n, c, h, w = source.shape
    s = source.reshape(c, -1).double()
    t = target.reshape(c, -1).double()
    mu_s, mu_t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    cov_s = torch.cov(s) + eps * torch.eye(c, dtype=s.dtype)
    cov_t = torch.cov(t) + eps * torch.eye(c, dtype=s.dtype)

    def _sqrt(m: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(m)
        vals = vals.clamp_min(eps)
        vals = vals.rsqrt() if inverse else vals.sqrt()
        return vecs @ torch.diag(vals) @ vecs.T

    a = _sqrt(cov_t) @ _sqrt(cov_s, inverse=True)
    out = a @ (s - mu_s) + mu_t
    return out.reshape(n, c, h, w).to(source.dtype).clamp(0, 1)


def as_tensor(image: Any, max_pixels: int | None = None) -> torch.Tensor:
    """Any supported image -> (1, 3, H, W) float tensor in [0, 1] (alpha dropped).

    Accepts a path (str / Path), encoded bytes, a PIL image, a numpy array ((H, W), (H, W, 3)
    or (H, W, 4); uint8, uint16 or float in [0, 1]) or a tensor ((3, H, W) or (1, 3, H, W)).
    """
    if isinstance(image, (str, Path, bytes, bytearray)):
        kwargs = {"max_pixels": max_pixels} if max_pixels else {}
        return load_image(bytes(image) if isinstance(image, bytearray) else image, **kwargs).rgb
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4 or t.shape[0] != 1 or t.shape[1] not in (1, 3):
            raise StyleTransferError(f"expected an image tensor (1, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
        if t.shape[1] == 1:
            t = t.repeat(1, 3, 1, 1)
        return t.float().clamp(0, 1)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return from_array(np.asarray(image, dtype=np.uint16))
        return from_array(np.asarray(image.convert("RGB")))
    if isinstance(image, np.ndarray):
        try:
            return from_array(image)
        except ValueError as exc:
            raise StyleTransferError(str(exc)) from None
    raise StyleTransferError(f"cannot use a {type(image).__name__} as an image; pass a path, PIL image, array or tensor")


def check_input_files(paths, what: str) -> None:
    """Each path must be an existing file: else a one-line ImageError naming ``what`` (e.g. ``--mask``)."""
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise ImageError(f"{what} {p}: no such file")
        if path.is_dir():
            raise ImageError(f"{what} {p}: is a folder, not an image")
