"""Settings of the web server (all limits in one place; the CLI flags map onto these fields)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .. import METHODS as LIBRARY_METHODS

API_KEY_ENV = "PAINTERLY_API_KEY"
# The methods a job names (the library's, less "auto": the server picks for a job that names none).
METHODS = tuple(m for m in LIBRARY_METHODS if m != "auto")
# Result sides the page offers: fast runs in seconds up to 4K; optimize takes minutes per megapixel.
SIZE_CHOICES = {"fast": (512, 1024, 2048, 3840), "optimize": (512, 768, 1024)}
# Result sides the page offers for a video (fast mode, every frame: seconds per frame on a CPU).
VIDEO_SIZE_CHOICES = (256, 512, 1024, 1920)


def default_workers() -> int:
    """Concurrent stylizations: one per two cores (each run uses the cores it is given)."""
    return max(1, (os.cpu_count() or 1) // 2)


@dataclass
class Settings:
    """Server settings.

    Attributes:
        workers: jobs stylized at the same time (threads; torch releases the GIL).
        max_queue: jobs waiting beyond the running ones; more are refused with 429.
        max_upload_bytes: largest request body (all files together); more is refused with 413.
        max_pixels: largest decoded image (width x height) accepted; more is refused with 413.
        max_size: largest output side a client may ask for (``size`` option) with method=optimize
            (minutes per megapixel).
        max_fast_size: the same for method=fast (one feed-forward pass, done in tiles: 4K is fine).
        default_size: output side when the client does not ask.
        max_styles: how many style images one job may blend.
        result_ttl: seconds a finished job (and its result file) is kept.
        result_dir: where results are written; ``None`` = a fresh temporary folder.
        api_key: when set, every job/stylize request needs it (``X-API-Key`` or ``Bearer``).
        cors_origins: origins allowed to call the API from a browser (``*`` for any).
        sync_timeout: seconds the synchronous endpoint waits for its result.
        torch_threads: intra-op threads per process; ``None`` = cores / workers.
        max_video_seconds: longest clip a video job takes (after ``start``/``duration``); 413 beyond.
        max_video_bytes: largest video file; 413 beyond (images keep ``max_upload_bytes``).
        max_video_side, max_video_short_side: largest frame, orientation-free (1920 x 1080 =
            1080p, landscape or portrait); 413 beyond.
        max_video_frames: most frames a clip may have (20 s at 60 fps); 413 beyond.
        video_default_size: result side of a video job when the client does not ask.
    """

    workers: int = field(default_factory=default_workers)
    max_queue: int = 32
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_size: int = 1024
    max_fast_size: int = 3840
    default_size: int = 512
    max_styles: int = 4
    result_ttl: float = 3600.0
    result_dir: str | None = None
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    sync_timeout: float = 120.0
    torch_threads: int | None = None
    max_video_seconds: float = 20.0
    max_video_bytes: int = 100 * 1024 * 1024
    max_video_side: int = 1920
    max_video_short_side: int = 1080
    max_video_frames: int = 1200
    video_default_size: int = 512

    def max_video_output_side(self) -> int:
        """Largest result side of a video job (the frame limit, and the fast mode's limit)."""
        return min(self.max_video_side, self.max_fast_size)

    def video_size_choices(self) -> list[int]:
        """The result sides the page offers for a video (within this server's limits)."""
        top = self.max_video_output_side()
        return [s for s in VIDEO_SIZE_CHOICES if s <= top] or [top]

    def max_side(self, method: str) -> int:
        """Largest result side a client may ask for with this method."""
        return self.max_fast_size if method == "fast" else self.max_size

    def size_choices(self, method: str) -> list[int]:
        """The result sides the page offers for a method (within this server's limit)."""
        sizes = SIZE_CHOICES.get(method, ())
        return [s for s in sizes if s <= self.max_side(method)] or [self.max_side(method)]

    def validate(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.max_queue < 0:
            raise ValueError(f"queue limit must be >= 0, got {self.max_queue}")
        if self.max_upload_bytes < 1024:
            raise ValueError(f"upload limit must be at least 1 KB, got {self.max_upload_bytes}")
        if self.max_pixels < 64 * 64:
            raise ValueError(f"pixel limit must be at least 4096, got {self.max_pixels}")
        if not 64 <= self.default_size <= self.max_size:
            raise ValueError(f"default size {self.default_size} must be between 64 and max size {self.max_size}")
        if self.max_fast_size < 64:
            raise ValueError(f"max fast size must be at least 64, got {self.max_fast_size}")
        if self.result_ttl <= 0:
            raise ValueError(f"result TTL must be positive, got {self.result_ttl}")
        if self.sync_timeout <= 0:
            raise ValueError(f"sync timeout must be positive, got {self.sync_timeout}")
        if self.max_styles < 1:
            raise ValueError(f"max styles must be at least 1, got {self.max_styles}")
        if not self.max_video_seconds > 0:
            raise ValueError(f"video duration limit must be positive, got {self.max_video_seconds}")
        if self.max_video_bytes < 1024:
            raise ValueError(f"video upload limit must be at least 1 KB, got {self.max_video_bytes}")
        if not 64 <= self.max_video_short_side <= self.max_video_side:
            raise ValueError(f"video resolution limit {self.max_video_side}x{self.max_video_short_side}: "
                             "both sides must be at least 64, the first the longer")
        if self.max_video_frames < 1:
            raise ValueError(f"video frame limit must be at least 1, got {self.max_video_frames}")
        if self.video_default_size < 64:
            raise ValueError(f"video default size must be at least 64, got {self.video_default_size}")
