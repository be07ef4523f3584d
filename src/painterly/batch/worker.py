"""One image of a batch, the same code for every runner (embedded threads, Ray actors): read the
photo and its painting by path, stylize with the runner's :class:`FastStylizer`, write the
output atomically. A bad photo is a failed :class:`TaskResult` with a one-line reason, never an
exception, so a batch never dies on one file.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image

from ..image import fit_size, load_image, resize, save_image
from .options import BatchOptions
from .tasks import Task

__all__ = ["StyleCache", "TaskResult", "is_complete", "run_task"]

STYLE_SIZE = 512  # = stylizers.fast.STYLE_SIZE: paintings are encoded at this longest side
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass
class TaskResult:
    """What became of one :class:`Task`.

    Attributes:
        task: the task.
        status: ``"done"`` (written now), ``"skipped"`` (complete from an earlier run) or
            ``"failed"``.
        seconds: time spent on it (read, stylize, write); ``None`` when skipped.
        error: the one-line reason of a failure.
        width, height: the output's size (0 when failed or skipped).
    """

    task: Task
    status: str
    seconds: float | None = None
    error: str = ""
    width: int = 0
    height: int = 0

    def to_row(self) -> dict:
        """A flat dict (Ray batches, JSON)."""
        return {**asdict(self.task), "status": self.status, "seconds": self.seconds, "error": self.error,
                "width": self.width, "height": self.height}

    @classmethod
    def from_row(cls, row: dict) -> "TaskResult":
        task = Task(str(row["content"]), str(row["style"]), str(row["output"]), str(row["key"]), float(row["alpha"]))
        seconds = row.get("seconds")
        return cls(task, str(row["status"]), None if seconds is None or seconds != seconds else float(seconds),
                   str(row.get("error") or ""), int(row.get("width") or 0), int(row.get("height") or 0))


def is_complete(path: str | Path) -> bool:
    """True when ``path`` is a finished output: it exists, is not empty and its header reads as
    an image. Outputs are written atomically, so a file there is a whole file."""
    p = Path(path)
    try:
        if p.stat().st_size == 0:
            return False
        with Image.open(p) as img:
            return img.size[0] > 0
    except (OSError, ValueError, SyntaxError):
        return False


class StyleCache:
    """Paintings read once and kept (the last ``size`` used; thread-safe), each at most
    :data:`STYLE_SIZE` px on its longest side (JPEGs decoded at a reduced scale)."""

    def __init__(self, max_pixels: int, size: int = 16) -> None:
        self.max_pixels = max_pixels
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()

    def get(self, path: str) -> torch.Tensor:
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
        rgb = load_image(path, max_pixels=self.max_pixels, reduce_to=STYLE_SIZE).rgb
        h, w = rgb.shape[-2:]
        if max(h, w) > STYLE_SIZE:
            rgb = resize(rgb, fit_size(h, w, size=STYLE_SIZE))
        with self._lock:
            self._items[path] = rgb
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return rgb


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    from ..errors import StyleTransferError

    return text if isinstance(exc, StyleTransferError) else f"{exc.__class__.__name__}: {text}"


def run_task(stylizer, task: Task, options: BatchOptions, styles: StyleCache) -> TaskResult:
    """Stylize ``task.content`` with ``task.style`` and write ``task.output`` (atomically; its
    folder created). Any error of this image is returned as a failed result."""
    t0 = time.perf_counter()
    try:
        style = styles.get(task.style)
    except Exception as exc:  # noqa: BLE001 - one bad file must not end the batch
        return TaskResult(task, FAILED, time.perf_counter() - t0, f"style {_one_line(exc)}")
    try:
        loaded = load_image(task.content, max_pixels=options.max_input_pixels, reduce_to=options.size)
        content = loaded.rgb
        if options.size is not None:
            content = resize(content, fit_size(*content.shape[-2:], size=options.size))
        out = stylizer(content, [style], options.fast_options(task.alpha))
        Path(task.output).parent.mkdir(parents=True, exist_ok=True)
        save_image(out, task.output, alpha=loaded.alpha, overwrite=True, inputs=[task.content, task.style],
                   quality=options.quality)
    except Exception as exc:  # noqa: BLE001 - one bad file must not end the batch
        return TaskResult(task, FAILED, time.perf_counter() - t0, _one_line(exc))
    h, w = out.shape[-2:]
    return TaskResult(task, DONE, time.perf_counter() - t0, width=int(w), height=int(h))
