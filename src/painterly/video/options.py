"""The options and result of :func:`painterly.video.stylize_video`, and its error."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import StyleTransferError

METHODS = ("fast", "optimize")
DEFAULT_BLEND = 0.6  # fast method, four levels: chosen by benchmarks/bench_video.py (docs/video.md)
# optimize method: the warm start alone (blend 0) keeps frames coherent; a blend on top washes out
# the optimised texture (measured by benchmarks/bench_video_warm.py, docs/video.md)
DEFAULT_OPTIMIZE_BLEND = 0.0
DEFAULT_WARM_STEPS = 40  # chosen by benchmarks/bench_video_warm.py (docs/video.md)

ProgressCallback = Callable[[int, "int | None"], None]


class VideoError(StyleTransferError):
    """A video could not be read or written (not a video, no video stream, bad codec...)."""


@dataclass
class VideoOptions:
    """Options of :func:`stylize_video`.

    Attributes:
        method: ``"fast"`` (AdaIN, one pass per frame) or ``"optimize"`` (Gatys per frame: short clips).
        fast: :class:`~painterly.stylizers.fast.FastOptions` (alpha, style weights, masks,
            preserve_color, model, levels, transform, backend, tile, device) for the fast method: frames get
            every level of the model, as a photo does.
        optimize: :class:`~painterly.stylizers.optimize.OptimizeOptions` for the optimize method.
        size: longest side of the output in pixels; ``None`` = the source's size.
        start: seconds to skip at the beginning.
        duration: seconds to keep after ``start``; ``None`` = to the end.
        temporal: keep consecutive frames coherent with optical flow (``False`` = every frame
            stylized on its own).
        blend: ``beta`` above: how much a frame follows the warped previous output where the
            flow is reliable (0 = no blend, 1 = frozen); ``None`` = 0.6 for fast, 0 for optimize
            (whose warm start already follows the previous output).
        detail: after the blend, give its fine texture back the contrast of the frame's own
            stylization (``False`` = the plain blend, whose averaged strokes fade).
        warm_steps: optimize with ``temporal``: the steps of every frame after the first, at the
            output's size only, started from the warped previous output (the first frame gets
            ``optimize``'s full coarse-to-fine schedule from the photo).
        audio: keep the audio stream (re-encoded to AAC).
        crf: H.264 quality (0 = lossless, 18 = visually lossless, 23 = x264's default).
    """

    method: str = "fast"
    fast: Any = None
    optimize: Any = None
    size: int | None = None
    start: float = 0.0
    duration: float | None = None
    temporal: bool = True
    blend: float | None = None
    detail: bool = True
    warm_steps: int = DEFAULT_WARM_STEPS
    audio: bool = True
    crf: int = 18

    def validate(self) -> None:
        if self.method not in METHODS:
            raise StyleTransferError(f"method must be fast or optimize, got {self.method!r}")
        if self.size is not None and self.size < 16:
            raise StyleTransferError(f"size must be at least 16 px, got {self.size}")
        if not (self.start >= 0 and math.isfinite(self.start)):
            raise StyleTransferError(f"start must be >= 0 seconds, got {self.start}")
        if self.duration is not None and not (self.duration > 0 and math.isfinite(self.duration)):
            raise StyleTransferError(f"duration must be > 0 seconds, got {self.duration}")
        if self.blend is not None and not 0.0 <= self.blend < 1.0:
            raise StyleTransferError(f"blend must be in [0, 1), got {self.blend}")
        if not (isinstance(self.warm_steps, int) and self.warm_steps >= 1):
            raise StyleTransferError(f"warm_steps must be an int >= 1, got {self.warm_steps!r}")
        if not 0 <= self.crf <= 51:
            raise StyleTransferError(f"crf must be between 0 and 51, got {self.crf}")

    def effective_blend(self) -> float:
        """``blend``, or the method's default when it is ``None``."""
        if self.blend is not None:
            return self.blend
        return DEFAULT_OPTIMIZE_BLEND if self.method == "optimize" else DEFAULT_BLEND


@dataclass
class VideoResult:
    """What :func:`stylize_video` wrote."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    audio: bool
    seconds: float


def parse_time(text: str) -> float:
    """``90``, ``90.5``, ``1:30`` or ``0:01:30.5`` -> seconds. On a clock, minutes and seconds
    are below 60 and only the seconds have a fraction (``1:99`` is a typo, not 159 s)."""
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        raise ValueError(f"expected seconds or [HH:]MM:SS, got {text!r}") from None
    if not 1 <= len(parts) <= 3 or any(not math.isfinite(p) or p < 0 for p in parts):
        raise ValueError(f"expected seconds or [HH:]MM:SS, got {text!r}")
    if any(p >= 60 for p in parts[1:]) or any(p != int(p) for p in parts[:-1]):
        raise ValueError(f"expected [HH:]MM:SS with whole hours and minutes and minutes and seconds "
                         f"below 60, got {text!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds
