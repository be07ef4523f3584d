"""What a batch tells: :class:`BatchProgress` after every image (images/s and time left) and the
:class:`BatchReport` at the end (counts, the failed inputs with their reasons, throughput),
also written as ``OUT/report.json``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_write
from .worker import DONE, FAILED, SKIPPED, TaskResult

__all__ = ["BatchProgress", "BatchReport", "Meter"]


@dataclass
class BatchProgress:
    """Where a running batch stands, passed to the ``progress`` callback after each image.

    Attributes:
        processed: images finished in this run (done + failed).
        total: images this run has to do (complete outputs excluded).
        done, failed: counts so far.
        images_per_s: processed / seconds since the first image started (model load excluded).
        eta_s: seconds left at that rate (``None`` before the first image).
        last: the image that just finished.
    """

    processed: int
    total: int
    done: int
    failed: int
    images_per_s: float
    eta_s: float | None
    last: TaskResult


@dataclass
class BatchReport:
    """The outcome of :func:`painterly.batch`.

    Attributes:
        total: photos in the batch.
        done: written by this run.
        skipped: complete from an earlier run (not redone).
        failed: ``[{"content": path, "error": reason}]`` of inputs that could not be done.
        ignored: files of the input folder that are not images by name (or hidden).
        seconds: wall time of the run (model load included).
        images_per_s: images written per second once the model was loaded.
        runner: ``"embedded"``, ``"ray"`` or ``"dry-run"``.
        output: the output folder; manifest: ``OUT/manifest.csv``.
        estimate_s: a dry run's estimate of the time the work would take on this machine.
    """

    total: int
    done: int = 0
    skipped: int = 0
    failed: list[dict] = field(default_factory=list)
    ignored: int = 0
    seconds: float = 0.0
    images_per_s: float = 0.0
    runner: str = "embedded"
    output: str = ""
    manifest: str = ""
    estimate_s: float | None = None

    @property
    def ok(self) -> bool:
        """True when no input failed (the exit status is 0)."""
        return not self.failed

    def summary(self) -> str:
        """One line for people."""
        if self.runner == "dry-run":
            return (f"{self.total} photos: {self.total - self.skipped} to do, {self.skipped} already done"
                    + (f", {self.ignored} other files ignored" if self.ignored else ""))
        text = (f"{self.done} written, {self.skipped} already done, {len(self.failed)} failed of {self.total} "
                f"into {self.output} in {self.seconds:.1f} s")
        if self.done:
            text += f" ({self.images_per_s:.2f} images/s, {self.runner})"
        return text

    def write(self, path: str | Path) -> Path:
        """Write the report as JSON, atomically."""
        path = Path(path)
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        return path


class Meter:
    """Counts finished images and turns them into a :class:`BatchProgress` (rate since the first
    image started, so a slow model load does not bend the estimate)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.counts = {DONE: 0, FAILED: 0, SKIPPED: 0}
        self.started: float | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def add(self, result: TaskResult) -> BatchProgress:
        self.start()
        self.counts[result.status] += 1
        processed = self.counts[DONE] + self.counts[FAILED]
        rate = processed / max(time.perf_counter() - self.started, 1e-9)
        eta = (self.total - processed) / rate if rate > 0 else None
        return BatchProgress(processed, self.total, self.counts[DONE], self.counts[FAILED], rate, eta, result)

    @property
    def rate(self) -> float:
        if self.started is None:
            return 0.0
        return self.counts[DONE] / max(time.perf_counter() - self.started, 1e-9)
