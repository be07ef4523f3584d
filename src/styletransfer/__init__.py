"""styletransfer: neural style transfer (Gatys optimisation and AdaIN feed-forward).

    >>> import styletransfer
    >>> out = styletransfer.stylize("photo.jpg", ["style.jpg"], size=512)   # doctest: +SKIP
    >>> styletransfer.save_image(out, "out.png")                            # doctest: +SKIP

Images are float tensors in [0, 1], RGB, shape (1, 3, H, W).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch

from .device import resolve_device
from .errors import ImageError, StyleTransferError
from .image import LoadedImage, fit_size, from_array, load_image, match_color, resize, save_image, transfer_luminance
from .stylizers.optimize import OptimizeOptions, stylize_optimize
from .video import VideoOptions, stylize_video  # noqa: F401 - video (PyAV, OpenCV imported lazily)
from .batch import BatchOptions, BatchReport, batch  # noqa: E402 - collections (Ray imported only for ray=)

__version__ = "0.1.0"

ImageLike = Union[str, Path, bytes, torch.Tensor, np.ndarray, "PIL.Image.Image"]  # noqa: F821
METHODS = ("optimize", "fast", "auto")

__all__ = [
    "BatchOptions",
    "BatchReport",
    "ImageError",
    "LoadedImage",
    "OptimizeOptions",
    "StyleTransferError",
    "as_tensor",
    "batch",
    "fast_available",
    "fit_size",
    "from_array",
    "load_image",
    "match_color",
    "resize",
    "resolve_device",
    "save_image",
    "stylize",
    "stylize_optimize",
    "transfer_luminance",
]


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


def fast_available() -> bool:
    """True when the feed-forward stylizer and its built-in model are installed."""
    try:
        from .stylizers import fast
    except ImportError:
        return False
    try:
        return bool(fast.default_model_available())
    except Exception:  # noqa: BLE001 - a broken model file means "not available"
        return False


def _import_fast():
    try:
        from .stylizers import fast
    except ImportError as exc:
        raise StyleTransferError(f"the fast (feed-forward) stylizer is not available: {exc}") from None
    return fast


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    *,
    method: str = "auto",
    style_weights: Sequence[float] | None = None,
    options: Any = None,
    size: int | None = None,
    max_pixels: int | None = None,
    callback: Callable[[int, int, float], None] | None = None,
) -> torch.Tensor:
    """Stylize one content image with one or more style images.

    Args:
        content: the photo (path, bytes, PIL image, numpy array or tensor; see :func:`as_tensor`).
        styles: one style image or a list of them (blended).
        method: ``"optimize"`` (Gatys et al.: slow, best quality, any style), ``"fast"`` (AdaIN
            feed-forward: one pass, needs the decoder model) or ``"auto"`` (fast when its
            built-in model is installed, otherwise optimize).
        style_weights: blend weights of the styles (normalised to sum 1); overrides the
            ``style_weights`` of ``options``.
        options: :class:`OptimizeOptions` (optimize) or ``styletransfer.stylizers.fast.FastOptions``
            (fast); ``None`` = the defaults.
        size: longest side of the output in pixels; ``None`` keeps the content's size.
        max_pixels: upper bound on the output's pixel count (applied after ``size``).
        callback: ``callback(step, total, loss)`` progress of the optimize method (may raise to
            cancel). The fast method reports nothing.

    Returns:
        (1, 3, H, W) float tensor in [0, 1] on the CPU.

    Raises:
        StyleTransferError: bad image, bad options, or the fast model missing.
    """
    if method not in METHODS:
        raise StyleTransferError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if not style_list:
        raise StyleTransferError("at least one style image is needed")
    if style_weights is not None and len(style_weights) != len(style_list):
        raise StyleTransferError(f"{len(style_weights)} style weight(s) for {len(style_list)} style image(s)")
    if method == "auto":
        if isinstance(options, OptimizeOptions):
            method = "optimize"
        elif options is not None:
            method = "fast"
        else:
            method = "fast" if fast_available() else "optimize"

    content_t = as_tensor(content)
    style_ts = [as_tensor(s) for s in style_list]
    if size is not None or max_pixels is not None:
        try:
            h, w = fit_size(*content_t.shape[-2:], size=size, max_pixels=max_pixels)
        except ValueError as exc:
            raise StyleTransferError(str(exc)) from None
        content_t = resize(content_t, (h, w))

    if method == "optimize":
        if options is not None and not isinstance(options, OptimizeOptions):
            raise StyleTransferError(f"method 'optimize' takes OptimizeOptions, got {type(options).__name__}")
        opts = options or OptimizeOptions()
        if style_weights is not None:
            opts = dataclasses.replace(opts, style_weights=[float(w) for w in style_weights])
        return stylize_optimize(content_t, style_ts, opts, callback=callback)

    fast = _import_fast()
    if options is not None and not isinstance(options, fast.FastOptions):
        raise StyleTransferError(f"method 'fast' takes FastOptions, got {type(options).__name__}")
    fopts = options or fast.FastOptions()
    if style_weights is not None:
        fopts = dataclasses.replace(fopts, style_weights=[float(w) for w in style_weights])
    return fast.stylize_fast(content_t, style_ts, fopts)
