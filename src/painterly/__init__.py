"""painterly: neural style transfer (Gatys optimisation and AdaIN feed-forward).

    >>> import painterly
    >>> out = painterly.stylize("photo.jpg", ["style.jpg"], size=512)   # doctest: +SKIP
    >>> painterly.save_image(out, "out.png")                            # doctest: +SKIP

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
from .image import (
    LoadedImage, as_tensor, fit_size, from_array, load_image, match_color, resize, save_image, transfer_luminance,
)
from .stylizers import fast
from .stylizers.fast import FastOptions, FastStylizer, stylize_fast
from .stylizers.optimize import OptimizeOptions, stylize_optimize
from .stylizers.weights import check_style_weights
from .video import VideoOptions, stylize_video  # video (PyAV, OpenCV imported lazily)
from .batch import BatchOptions, BatchReport, batch  # collections (Ray imported only for ray=)

__version__ = "0.1.0"

ImageLike = Union[str, Path, bytes, torch.Tensor, np.ndarray, "PIL.Image.Image"]  # noqa: F821
METHODS = ("auto", "optimize", "fast")  # stylize(method=...), the CLI's and the demo's --method

__all__ = [
    "BatchOptions",
    "BatchReport",
    "FastOptions",
    "FastStylizer",
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
    "resolve_method",
    "save_image",
    "stylize",
    "stylize_fast",
    "stylize_optimize",
    "stylize_video",
    "transfer_luminance",
    "VideoOptions",
]


def fast_available() -> bool:
    """True when a built-in fast model is installed."""
    return bool(fast.default_model_available())


def resolve_method(method: str = "auto", implied: str | None = None) -> str:
    """The stylizer ``method`` names: ``"optimize"`` or ``"fast"`` as they are; ``"auto"`` is
    ``implied`` (the method of the caller's options, or ``None``), else fast when its built-in
    model is installed (:func:`fast_available`), else optimize. One rule for :func:`stylize`, the
    CLI and the demo.

    Raises:
        StyleTransferError: ``method`` is none of :data:`METHODS`.
    """
    if method not in METHODS:
        raise StyleTransferError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "auto":
        return method
    if implied is not None:
        return implied
    return "fast" if fast_available() else "optimize"


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
    stylizer: FastStylizer | None = None,
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
        options: :class:`OptimizeOptions` (optimize) or ``painterly.stylizers.fast.FastOptions``
            (fast); ``None`` = the defaults.
        size: longest side of the output in pixels; ``None`` keeps the content's size.
        max_pixels: upper bound on the output's pixel count (applied after ``size``).
        callback: ``callback(step, total, loss)`` progress of the optimize method (may raise to
            cancel). The fast method reports nothing.
        stylizer: the fast method's pipeline, built once by the caller
            (``FastStylizer.from_model(...)``); default: the one of ``options.model``.

    Returns:
        (1, 3, H, W) float tensor in [0, 1] on the CPU.

    Raises:
        StyleTransferError: bad image, bad options, or the fast model missing.
    """
    implied = ("optimize" if isinstance(options, OptimizeOptions)
               else "fast" if options is not None or stylizer is not None else None)
    method = resolve_method(method, implied)
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if not style_list:
        raise StyleTransferError("at least one style image is needed")
    check_style_weights(style_weights, len(style_list))

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

    if options is not None and not isinstance(options, FastOptions):
        raise StyleTransferError(f"method 'fast' takes FastOptions, got {type(options).__name__}")
    fopts = options or FastOptions()
    if style_weights is not None:
        fopts = dataclasses.replace(fopts, style_weights=[float(w) for w in style_weights])
    if stylizer is not None:
        return stylizer(content_t, style_ts, fopts)
    return stylize_fast(content_t, style_ts, fopts)
