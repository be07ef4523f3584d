"""What a worker runs: a :class:`Task` (decoded images + options) -> a stylized image tensor.

The server talks to an :class:`Engine`; the default one calls the library's stylizers (fast
AdaIN and the Gatys optimisation). Tests and the load benchmark pass their own engine to
:func:`styletransfer.web.create_app` so they need no model weights.
"""
from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from ..errors import StyleTransferError
from ..image import match_color, resize, transfer_luminance

# progress(fraction in [0, 1]); raises JobCancelled when the job was cancelled.
Progress = Callable[[float], None]


class JobCancelled(Exception):
    """Raised inside a run (by the progress callback) when its job was cancelled."""


@dataclass
class Task:
    """One stylization, already decoded and resized to the output size."""

    content: torch.Tensor                       # (1, 3, H, W) in [0, 1]
    styles: list[torch.Tensor]                  # each (1, 3, h, w) in [0, 1]
    style_weights: list[float] | None = None
    strength: float = 1.0                       # 0 = the photo, 1 = full style
    keep_colors: str | None = None              # None | "luminance" | "histogram"
    quality: str = "fast"                       # "fast" | "best"
    seed: int | None = None
    alpha: torch.Tensor | None = field(default=None, repr=False)  # content transparency, re-attached

    @property
    def pixels(self) -> int:
        return int(self.content.shape[-2] * self.content.shape[-1])


class Engine(Protocol):
    """Runs tasks. ``modes`` maps each quality to whether it can run here."""

    def modes(self) -> dict[str, bool]: ...

    def run(self, task: Task, progress: Progress) -> torch.Tensor: ...


def _fast_module():
    try:
        from ..stylizers import fast
    except ImportError:
        return None
    return fast


def _optimize_module():
    try:
        from ..stylizers import optimize
    except ImportError:
        return None
    return optimize


class LibraryEngine:
    """The real stylizers: ``fast`` = AdaIN decoder (one pass), ``best`` = Gatys optimisation."""

    def __init__(self, device: str = "auto", best_overrides: dict | None = None, fast_model: str | None = None):
        """``best_overrides``: OptimizeOptions fields for the best mode (e.g. ``{"steps": 100}``);
        ``fast_model``: a decoder ``model.safetensors`` to use instead of the built-in one."""
        self.device = device
        self.best_overrides = dict(best_overrides or {})
        self.fast_model = str(fast_model) if fast_model else None

    def modes(self) -> dict[str, bool]:
        fast = _fast_module()
        if fast is not None and self.fast_model:
            fast_ok = os.path.isfile(self.fast_model)
        else:
            fast_ok = bool(fast is not None and getattr(fast, "default_model_available", lambda: False)())
        opt = _optimize_module()
        best_ok = opt is not None and hasattr(opt, "stylize_optimize")
        return {"fast": fast_ok, "best": best_ok}

    def run(self, task: Task, progress: Progress) -> torch.Tensor:
        progress(0.0)
        if task.strength <= 0.0:
            progress(1.0)
            return task.content.clone()
        if task.quality == "fast":
            return self._run_fast(task, progress)
        return self._run_best(task, progress)

    def _run_fast(self, task: Task, progress: Progress) -> torch.Tensor:
        fast = _fast_module()
        if fast is None or not self.modes()["fast"]:
            raise StyleTransferError("the instant mode is not available on this server (no fast model); use quality=best")
        opts = fast.FastOptions(alpha=float(task.strength), style_weights=task.style_weights,
                                preserve_color=task.keep_colors, device=self.device, model=self.fast_model)
        with torch.inference_mode():
            out = fast.stylize_fast(task.content, task.styles, opts)
        progress(1.0)
        return out

    def _run_best(self, task: Task, progress: Progress) -> torch.Tensor:
        opt = _optimize_module()
        if opt is None or not hasattr(opt, "stylize_optimize"):
            raise StyleTransferError("the best-quality mode is not available on this server")
        options_cls = opt.OptimizeOptions
        names = set(getattr(options_cls, "__dataclass_fields__", {}))
        kwargs: dict = {k: v for k, v in self.best_overrides.items() if k in names}

        def callback(step: int, total: int, loss: float) -> None:
            progress(min(1.0, step / max(1, total)))  # raises JobCancelled to stop the run

        if task.style_weights is not None:
            kwargs["style_weights"] = list(task.style_weights)
        if task.seed is not None and "seed" in names:
            kwargs["seed"] = task.seed
        if "device" in names:
            kwargs["device"] = self.device
        # Strength: scale the style weight on a log scale (1 -> default, 0.5 -> 1/10, 0 -> the
        # photo), since a linear scale barely moves the optimum.
        if task.strength < 1.0 and "style_weight" in names:
            base = kwargs.get("style_weight", options_cls.__dataclass_fields__["style_weight"].default)
            kwargs["style_weight"] = float(base) * 10.0 ** (2.0 * (task.strength - 1.0))
        keep = task.keep_colors
        if keep and "preserve_color" in names:
            kwargs["preserve_color"] = keep
            keep = None
        options = options_cls(**kwargs)
        if "callback" in inspect.signature(opt.stylize_optimize).parameters:
            out = opt.stylize_optimize(task.content, task.styles, options, callback=callback)
        else:
            out = opt.stylize_optimize(task.content, task.styles, options)
        if isinstance(out, tuple):
            out = out[0]
        if keep == "luminance":
            out = transfer_luminance(out, task.content)
        elif keep == "histogram":
            out = match_color(out, task.content)
        progress(1.0)
        return out


def strength_blend(content: torch.Tensor, stylized: torch.Tensor, strength: float) -> torch.Tensor:
    """Pixel blend (used by stub engines); the real engines map strength to their own knobs."""
    stylized = resize(stylized, content.shape[-2:])
    return (strength * stylized + (1.0 - strength) * content).clamp(0, 1)


# Fixed work per job in "megapixel equivalents": encoding the style (512^2) and the set-up cost
# about as much as a quarter-megapixel photo, so small photos do not skew the measured rate.
FIXED_MPX = 0.25


def work_units(task: Task) -> float:
    """A task's work in megapixel equivalents (photo pixels plus the fixed part)."""
    return task.pixels / 1e6 + FIXED_MPX


def estimate_seconds(task: Task, seconds_per_mpx: dict[str, float]) -> float:
    """Rough run time of a task from the measured speed of earlier runs (or a prior)."""
    rate = seconds_per_mpx.get(task.quality, default_seconds_per_mpx()[task.quality])
    return max(0.05, rate * work_units(task))


def default_seconds_per_mpx() -> dict[str, float]:
    """Priors for ETAs before anything was measured (2-core CPU figures, deliberately pessimistic)."""
    return {"fast": 4.0, "best": 240.0}


def log_blend(a: float, b: float, weight: float) -> float:
    """Exponential moving average helper on a log scale (robust to one slow outlier)."""
    if a <= 0:
        return b
    return math.exp((1 - weight) * math.log(a) + weight * math.log(max(b, 1e-6)))
