"""What a worker runs: a :class:`Task` (decoded images + options) -> a stylized image tensor.

The server talks to an :class:`Engine`; :class:`LibraryEngine` calls the library's stylizers
(the fast feed-forward decoder, WCT or AdaIN, and the Gatys optimisation) with the networks
and options it was given. Tests pass it tiny networks; the load benchmark and some tests pass
their own engine to :func:`painterly.web.create_app`.
"""
from __future__ import annotations

import dataclasses
import math
import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch

from .. import plan as planning
from ..device import resolve_device
from ..encoders.vgg import VGG19Encoder
from ..errors import StyleTransferError
from ..models import Decoder
from ..stylizers import fast
from ..stylizers.optimize import OptimizeOptions, stylize_optimize

# progress(fraction in [0, 1]); raises JobCancelled when the job was cancelled.
Progress = Callable[[float], None]
# progress(frames done, frames in all or None); raises JobCancelled when the job was cancelled.
FrameProgress = Callable[[int, "int | None"], None]


class JobCancelled(Exception):
    """Raised inside a run (by the progress callback) when its job was cancelled."""


@dataclass
class Task:
    """One stylization, already decoded and resized to the output size."""

    content: torch.Tensor                       # (1, 3, H, W) in [0, 1]
    styles: list[torch.Tensor]                  # each (1, 3, h, w) in [0, 1]
    style_weights: list[float] | None = None
    alpha: float = 1.0                          # style strength: 0 = the photo, 1 = full style
    preserve_color: str | None = None           # None | "luminance" | "histogram"
    method: str = "fast"                        # "fast" | "optimize"
    seed: int | None = None
    transparency: torch.Tensor | None = field(default=None, repr=False)  # the content's alpha channel, re-attached

    @property
    def pixels(self) -> int:
        return int(self.content.shape[-2] * self.content.shape[-1])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the result."""
        return int(self.content.shape[-2]), int(self.content.shape[-1])


@dataclass
class VideoTask:
    """One video stylization: the clip on disk (already probed and within the limits), the
    styles decoded, the options of :class:`~painterly.video.VideoOptions`."""

    input: Path                                  # the uploaded clip (deleted when the job ends)
    styles: list[torch.Tensor]                   # each (1, 3, h, w) in [0, 1]
    frames: int                                  # expected frame count (for the progress)
    height: int                                  # result frame size (even sides)
    width: int
    size: int | None = None                      # longest side of the result; None = the clip's
    style_weights: list[float] | None = None
    alpha: float = 1.0
    preserve_color: str | None = None
    temporal: bool = True
    audio: bool = True
    start: float = 0.0
    duration: float | None = None                # seconds kept (the server's limit at most)
    method: str = "fast"


class Engine(Protocol):
    """Runs tasks. ``modes`` maps each method (``"fast"``, ``"optimize"``) to whether it can run
    here (an engine that still says ``"best"`` for optimize is understood).

    An engine may also define ``planned_seconds(method, height, width) -> float`` (what
    :mod:`painterly.plan` says one result of that size takes with the engine's options and
    model); without it, :func:`planned_seconds` (the library's default options). The server
    corrects either by what its own runs measure. An engine that can stylize video defines
    ``run_video(task: VideoTask, progress: FrameProgress, output: Path) -> None`` (writes the
    MP4 ``output``); the server offers video jobs only then. An engine whose fast mode runs a
    model file of its own names it in ``fast_model`` (the on-device mode sends that model to
    the browser; without it, the built-in one).
    """

    def modes(self) -> dict[str, bool]: ...

    def run(self, task: Task, progress: Progress) -> torch.Tensor: ...


def planned_seconds(method: str, height: int, width: int, *, fast_options: fast.FastOptions | None = None,
                    best_options: OptimizeOptions | None = None, model_factor: float = 1.0) -> float:
    """Seconds one ``height`` x ``width`` result takes by :mod:`painterly.plan` (the project's
    one cost model): the fast plan with the networks already loaded (a server holds them), or the
    optimiser's schedule of megapixel-steps; at torch's current thread count.

    >>> planned_seconds("optimize", 512, 512) > planned_seconds("optimize", 120, 160) > planned_seconds("fast", 120, 160)
    True
    """
    threads = torch.get_num_threads()
    if method == "optimize":
        return planning.plan_optimize(height, width, best_options or OptimizeOptions(), threads=threads).seconds
    return planning.plan_fast(height, width, fast_options or fast.FastOptions(), threads=threads,
                              model_factor=model_factor, loaded=True).seconds


class LibraryEngine:
    """The real stylizers: ``fast`` = the feed-forward decoder (one pass; WCT or AdaIN as
    ``fast_options.transform`` says), ``optimize`` = the Gatys optimisation.

    Args:
        device: where both run (``"auto"``, ``"cpu"``, ``"cuda"``...); overrides the options'.
        encoder: the VGG19 encoder; ``None`` = the pretrained one (tests pass a tiny one).
        decoder: the fast mode's decoder; ``None`` = ``fast_options.model`` or the built-in one.
        fast_model: a model file or a built-in model's name (same as ``fast_options.model``).
        stylizer: the fast pipeline to use (a :class:`~painterly.stylizers.fast.FastStylizer`);
            default: one built once, on first use, from the options (or ``encoder``/``decoder``).
        fast_options: base options of the fast mode; each task sets ``alpha``,
            ``style_weights`` and ``preserve_color`` on a copy.
        best_options: base options of the optimize mode; each task sets ``style_weights``,
            ``preserve_color``, ``seed`` and scales ``style_weight`` by its ``alpha``.
    """

    def __init__(self, device: str = "auto", *, encoder: VGG19Encoder | None = None,
                 decoder: Decoder | None = None, fast_model: str | os.PathLike | None = None,
                 fast_options: fast.FastOptions | None = None, best_options: OptimizeOptions | None = None,
                 stylizer: fast.FastStylizer | None = None):
        self.device = device
        self.encoder = encoder
        self.decoder = decoder
        self._stylizer = stylizer
        self._stylizer_lock = threading.Lock()
        self.fast_options = dataclasses.replace(fast_options or fast.FastOptions(), device=device)
        if fast_model is not None:
            self.fast_options.model = str(fast_model)
        self.best_options = dataclasses.replace(best_options or OptimizeOptions(), device=device)

    @property
    def fast_model(self) -> str | None:
        """The fast mode's model file (``serve --fast-model``, a built-in model's name resolved);
        ``None`` = the default built-in model (or the ``decoder`` given). The on-device mode
        exports this file for the browser."""
        if self._stylizer is not None and self._stylizer.model_path is not None:
            return str(self._stylizer.model_path)
        if not self.fast_options.model:
            return None
        try:
            return str(fast.resolve_model_path(self.fast_options.model))
        except StyleTransferError:
            return None

    @property
    def fast_stylizer(self) -> fast.FastStylizer:
        """The fast pipeline, built once (on first use: loading the networks takes a moment)."""
        with self._stylizer_lock:
            if self._stylizer is None:
                if self.decoder is not None:
                    from ..encoders import vgg19

                    enc = self.encoder or vgg19(device=resolve_device(self.device))
                    self._stylizer = fast.FastStylizer(enc, self.decoder)
                else:
                    o = self.fast_options
                    self._stylizer = fast.FastStylizer.from_model(o.model, o.device, o.backend, encoder=self.encoder)
            return self._stylizer

    def modes(self) -> dict[str, bool]:
        if self._stylizer is not None or self.decoder is not None:
            fast_ok = True
        elif self.fast_options.model:
            fast_ok = self.fast_model is not None
        else:
            fast_ok = fast.default_model_available()
        return {"fast": fast_ok, "optimize": True}

    def planned_seconds(self, method: str, height: int, width: int) -> float:
        """:func:`planned_seconds` with this engine's options and, once it is loaded, its fast
        model's factor (:func:`painterly.plan.fast_model_factor`)."""
        factor = 1.0
        if method == "fast" and self._stylizer is not None:
            st = self._stylizer
            factor = planning.fast_model_factor(len(st.levels), getattr(st.encoder, "width_divisor", 1))
        return planned_seconds(method, height, width, fast_options=self.fast_options,
                               best_options=self.best_options, model_factor=factor)

    def run_video(self, task: VideoTask, progress: FrameProgress, output: Path) -> None:
        """The fast mode on every frame with :func:`~painterly.video.stylize_video`
        (temporal blending with optical flow unless ``task.temporal`` is off)."""
        from ..video import VideoOptions, stylize_video

        if not self.modes()["fast"]:
            raise StyleTransferError("the fast mode is not available on this server (no fast model); "
                                     "video needs it")
        fast_options = dataclasses.replace(self.fast_options, alpha=float(task.alpha),
                                           style_weights=task.style_weights, preserve_color=task.preserve_color)
        options = VideoOptions(method="fast", fast=fast_options, size=task.size, start=task.start,
                               duration=task.duration, temporal=task.temporal, audio=task.audio)
        progress(0, task.frames)
        with torch.inference_mode():
            stylize_video(task.input, task.styles, output, options, callback=progress, stylizer=self.fast_stylizer)

    def run(self, task: Task, progress: Progress) -> torch.Tensor:
        progress(0.0)
        if task.alpha <= 0.0:
            progress(1.0)
            return task.content.clone()
        if task.method == "fast":
            return self._run_fast(task, progress)
        return self._run_optimize(task, progress)

    def _run_fast(self, task: Task, progress: Progress) -> torch.Tensor:
        if not self.modes()["fast"]:
            raise StyleTransferError("the fast mode is not available on this server (no fast model); use method=optimize")
        options = dataclasses.replace(self.fast_options, alpha=float(task.alpha),
                                      style_weights=task.style_weights, preserve_color=task.preserve_color)
        with torch.inference_mode():
            out = self.fast_stylizer(task.content, task.styles, options)
        progress(1.0)
        return out

    def _run_optimize(self, task: Task, progress: Progress) -> torch.Tensor:
        base = self.best_options
        # alpha: scale the style weight on a log scale (1 -> as configured, 0.5 -> 1/10,
        # 0 -> the photo), since a linear scale barely moves the optimum.
        options = dataclasses.replace(
            base, style_weight=base.style_weight * 10.0 ** (2.0 * (task.alpha - 1.0)),
            style_weights=task.style_weights, preserve_color=task.preserve_color,
            seed=task.seed if task.seed is not None else base.seed)

        def callback(step: int, total: int, loss: float) -> None:
            progress(min(1.0, step / max(1, total)))  # raises JobCancelled to stop the run

        out = stylize_optimize(task.content, task.styles, options, callback=callback, encoder=self.encoder)
        progress(1.0)
        return out


def video_unavailable(engine: object) -> str | None:
    """Why this server cannot take video jobs (``None`` when it can)."""
    if not callable(getattr(engine, "run_video", None)):
        return "this server's engine does not stylize video"
    try:
        if not engine.modes().get("fast"):  # type: ignore[attr-defined]
            return "video needs the fast mode, which this server does not have (no fast model)"
    except Exception:
        return "this server's engine does not say whether it can stylize"
    missing = [name for name in ("av", "cv2") if importlib.util.find_spec(name) is None]
    if missing:
        return ("video needs PyAV and OpenCV on the server (pip install 'painterly[video]'; "
                f"missing: {', '.join(missing)})")
    return None


def log_blend(a: float, b: float, weight: float) -> float:
    """Exponential moving average helper on a log scale (robust to one slow outlier)."""
    if a <= 0:
        return b
    return math.exp((1 - weight) * math.log(a) + weight * math.log(max(b, 1e-6)))
