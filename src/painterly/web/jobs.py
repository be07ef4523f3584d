"""Jobs: a bounded queue in front of a fixed pool of worker threads, results on disk with a TTL.

- Admission control: at most ``workers + max_queue`` jobs are queued or running; beyond that
  :meth:`JobManager.submit` raises :class:`QueueFull` (the API answers 429 + Retry-After).
  An accepted job is never dropped: it ends succeeded, failed (with a message) or cancelled.
- Job ids are 128-bit random (``secrets``); a result file is ``<dir>/<id>.png`` (a video's
  ``<dir>/<id>.mp4``) where the id is generated here, never taken from a request. A video's
  upload waits in ``<dir>/.upload-*`` and is deleted as soon as its job ends. Lookups validate the id's shape first and only
  return jobs from the in-memory table, so no request can name a path.
- A janitor thread deletes finished jobs and their files ``result_ttl`` seconds after they end.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..atomic import atomic_write
from ..errors import StyleTransferError
from ..image import encode_image
from .config import Settings
from .engine import Engine, JobCancelled, Task, VideoTask, log_blend, planned_seconds

log = logging.getLogger("painterly.web")

JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINAL = (SUCCEEDED, FAILED, CANCELLED)


class QueueFull(Exception):
    """The queue is at its limit; ``retry_after`` is a hint in whole seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Job:
    id: str
    task: Task | VideoTask | None
    method: str                             # "fast" | "optimize"
    width: int
    height: int
    options: dict
    kind: str = "image"                     # "image" | "video"
    frames: int | None = None               # video: frames expected in all
    frames_done: int | None = None          # video: frames written so far
    upload_path: Path | None = None         # video: the uploaded clip, deleted when the job ends
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    state: str = QUEUED
    progress: float = 0.0
    error: str | None = None
    result_path: Path | None = None
    estimate: float = 1.0
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)
    done_event: threading.Event = field(default_factory=threading.Event, repr=False)
    _callbacks: list[Callable[["Job"], None]] = field(default_factory=list, repr=False)


class JobManager:
    """Owns the queue, the worker threads, the janitor and the result folder."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self._own_dir = settings.result_dir is None
        if settings.result_dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="painterly-web-")).resolve()
        else:
            self.dir = Path(settings.result_dir).resolve()
            self.dir.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._waiting: collections.deque[Job] = collections.deque()
        self._running = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # measured / planned seconds, per method and "video" (see Engine.planned_seconds):
        # 1.0 (the plan as it is) until this server has measured a run of its own
        self.calibration: dict[str, float] = {}
        self._measured: set[str] = set()  # qualities whose calibration was measured (1.0 is gone)
        self._planned = getattr(engine, "planned_seconds", planned_seconds)
        self.counters = collections.Counter()

    # --- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        for i in range(self.settings.workers):
            t = threading.Thread(target=self._work, name=f"stylize-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._janitor, name="result-janitor", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what is left, stop the threads and delete the result folder if we made it."""
        self._stop.set()
        with self._cond:
            for job in list(self._jobs.values()):
                if job.state not in FINAL:
                    job.cancel_event.set()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        with self._cond:
            for job in self._jobs.values():
                self._drop_upload(job)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- API used by the app -----------------------------------------------------------------
    def submit(self, task: Task, options: dict, max_wait: float | None = None) -> Job:
        """Queue a task, or raise :class:`QueueFull` when the queue is at its limit or, with
        ``max_wait``, when the job would likely not be done within ``max_wait`` seconds."""
        h, w = int(task.content.shape[-2]), int(task.content.shape[-1])
        job = Job(id=secrets.token_urlsafe(16), task=task, method=task.method, width=w, height=h,
                  options=options, estimate=self.estimate(task.method, h, w))
        return self._admit(job, max_wait)

    def submit_video(self, task: VideoTask, options: dict, width: int, height: int) -> Job:
        """Queue a video task (its ``input`` file becomes the job's: deleted when the job ends,
        or at once when the queue refuses it); ``width`` x ``height`` is the result as shown."""
        job = Job(id=secrets.token_urlsafe(16), task=task, method=task.method, width=width, height=height,
                  options=options, kind="video", frames=task.frames, frames_done=0, upload_path=task.input,
                  estimate=self.estimate_video(task.height, task.width, task.frames))
        try:
            return self._admit(job, None)
        except BaseException:
            self._drop_upload(job)
            raise

    def upload_file(self, suffix: str = "") -> Path:
        """A new empty file in the result folder for an upload (the caller fills it)."""
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=self.dir)
        os.close(fd)
        return Path(name)

    def _admit(self, job: Job, max_wait: float | None) -> Job:
        if self._stop.is_set():
            raise QueueFull(5)
        with self._cond:
            full = len(self._waiting) + self._running >= self.settings.workers + self.settings.max_queue
            if not full and max_wait is not None:
                full = self._backlog_locked() / self.settings.workers + job.estimate > max_wait
            if full:
                self.counters["rejected"] += 1
                raise QueueFull(self._retry_after_locked())
            self._jobs[job.id] = job
            self._waiting.append(job)
            self.counters["accepted"] += 1
            self._cond.notify()
        return job

    def planned(self, method: str, height: int, width: int) -> float:
        """The plan's seconds for a ``height`` x ``width`` result of this method (the engine's)."""
        return max(1e-3, float(self._planned(method, height, width)))

    def estimate(self, method: str, height: int, width: int) -> float:
        """Seconds one run of this size takes: the plan, corrected by this server's earlier runs."""
        return max(0.05, self.calibration.get(method, 1.0) * self.planned(method, height, width))

    def estimate_video(self, height: int, width: int, frames: int) -> float:
        """Seconds a clip of ``frames`` frames at ``height`` x ``width`` takes: that many fast
        images by the plan, corrected by earlier clips (else by earlier fast images)."""
        ratio = self.calibration.get("video") or self.calibration.get("fast", 1.0)
        return max(0.05, ratio * frames * self.planned("fast", height, width))

    def get(self, job_id: str) -> Job | None:
        if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
            return None
        with self._cond:
            return self._jobs.get(job_id)

    def cancel(self, job: Job) -> Job:
        """Cancel a queued or running job (a finished job is left as it is)."""
        with self._cond:
            if job.state in FINAL:
                return job
            job.cancel_event.set()
            if job.state == QUEUED:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(job)
                self._finish_locked(job, CANCELLED, None)
        if job.state == CANCELLED:
            self._run_callbacks(job)
        return job

    def add_done_callback(self, job: Job, fn: Callable[[Job], None]) -> None:
        """Call ``fn(job)`` (from a worker thread) once the job is final; now if it already is."""
        with self._cond:
            if job.state not in FINAL:
                job._callbacks.append(fn)
                return
        fn(job)

    def result_file(self, job: Job) -> Path | None:
        """The job's result file if it exists and lies inside the result folder."""
        path = job.result_path
        if path is None:
            return None
        path = path.resolve()
        if path.parent != self.dir or not path.is_file():
            return None
        return path

    def stats(self) -> dict:
        with self._cond:
            return {
                "queued": len(self._waiting),
                "running": self._running,
                "workers": self.settings.workers,
                "queue_limit": self.settings.max_queue,
                "jobs_kept": len(self._jobs),
                **{k: self.counters[k] for k in ("accepted", "rejected", "succeeded", "failed", "cancelled")},
            }

    def describe(self, job: Job) -> dict:
        """The job's public status (JSON-ready)."""
        now = time.time()
        with self._cond:
            state = job.state
            position = None
            ahead = 0.0
            if state == QUEUED:
                for i, other in enumerate(self._waiting):
                    if other is job:
                        position = i + 1
                        break
                    ahead += other.estimate
                ahead += sum(self._remaining(j, now) for j in self._jobs.values() if j.state == RUNNING)
        progress = 1.0 if state == SUCCEEDED else job.progress
        eta = None
        if state == RUNNING:
            eta = self._remaining(job, now)
        elif state == QUEUED:
            eta = ahead / self.settings.workers + job.estimate
        elif state == SUCCEEDED:
            eta = 0.0
        elapsed = None
        if job.started is not None:
            elapsed = (job.finished or now) - job.started
        video = job.kind == "video"
        return {
            "id": job.id,
            "kind": job.kind,
            "media_type": "video/mp4" if video else None,
            "frames": job.frames if video else None,
            "frames_done": job.frames_done if video else None,
            "status": state,
            "progress": round(progress, 4),
            "percent": int(progress * 100),
            "eta_seconds": None if eta is None else round(max(0.0, eta), 1),
            "elapsed_seconds": None if elapsed is None else round(elapsed, 2),
            "queue_position": position,
            "method": job.method,
            "quality": "best" if job.method == "optimize" else job.method,  # deprecated: method's old name
            "width": job.width,
            "height": job.height,
            "options": job.options,
            "error": job.error,
            "created_at": job.created,
            "finished_at": job.finished,
            "expires_at": None if job.finished is None else job.finished + self.settings.result_ttl,
        }

    # --- internals ---------------------------------------------------------------------------
    def _remaining(self, job: Job, now: float) -> float:
        if job.started is None:
            return job.estimate
        elapsed = now - job.started
        if job.progress >= 0.05:
            return elapsed / job.progress * (1.0 - job.progress)
        return max(job.estimate - elapsed, 0.5)

    def _backlog_locked(self) -> float:
        """Estimated seconds of work queued or still running."""
        now = time.time()
        pending = sum(j.estimate for j in self._waiting)
        return pending + sum(self._remaining(j, now) for j in self._jobs.values() if j.state == RUNNING)

    def _retry_after_locked(self) -> int:
        """Seconds until the first slot frees: the soonest end of a running job."""
        now = time.time()
        running = [self._remaining(j, now) for j in self._jobs.values() if j.state == RUNNING]
        soonest = min(running) if running else (self._waiting[0].estimate if self._waiting else 1.0)
        return int(min(60, max(1, math.ceil(soonest))))

    def _finish_locked(self, job: Job, state: str, error: str | None) -> None:
        job.state = state
        job.error = error
        job.finished = time.time()
        job.task = None  # free the images
        self._drop_upload(job)
        self.counters[state] += 1
        job.done_event.set()

    @staticmethod
    def _drop_upload(job: Job) -> None:
        if job.upload_path is not None:
            with contextlib.suppress(OSError):
                job.upload_path.unlink()
            job.upload_path = None

    def _run_callbacks(self, job: Job) -> None:
        with self._cond:
            callbacks, job._callbacks = job._callbacks, []
        for fn in callbacks:
            try:
                fn(job)
            except Exception:  # a waiter going away must not hurt the worker
                log.exception("job %s: done callback failed", job.id)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                job = self._waiting.popleft()
                job.state = RUNNING
                job.started = time.time()
                self._running += 1
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running -= 1
                self._run_callbacks(job)

    def _run(self, job: Job) -> None:
        task = job.task
        assert task is not None

        def progress(fraction: float) -> None:
            if job.cancel_event.is_set():
                raise JobCancelled()
            job.progress = float(min(1.0, max(job.progress, fraction)))

        def frame_progress(done: int, total: int | None) -> None:
            total = total or job.frames or 0
            job.frames_done = done
            if total and job.frames != total and done <= total:
                job.frames = total  # the decoder's count is better than the header's
            # never quite 1.0 before the file is closed and renamed
            progress(min(0.99, done / total) if total else 0.0)

        state, error = FAILED, None
        try:
            if isinstance(task, VideoTask):
                self._run_video(job, task, frame_progress)
            else:
                self._run_image(job, task, progress)
            state = SUCCEEDED
        except JobCancelled:
            state = CANCELLED
        except StyleTransferError as exc:
            error = str(exc)
            if isinstance(task, VideoTask):  # the upload's path is the server's business
                error = error.replace(str(task.input), "content")
        except MemoryError:
            error = f"the server ran out of memory for this {job.kind}; try a smaller size"
        except Exception:
            log.exception("job %s failed", job.id)
            error = "internal error while stylizing (logged on the server)"
        with self._cond:
            self._finish_locked(job, state, error)

    def _run_video(self, job: Job, task: VideoTask, progress) -> None:
        path = self.dir / f"{job.id}.mp4"  # written atomically by the engine (temp file, rename)
        self.engine.run_video(task, progress, path)  # type: ignore[attr-defined]
        if job.cancel_event.is_set():
            with contextlib.suppress(OSError):
                path.unlink()
            raise JobCancelled()
        if not path.is_file():
            raise RuntimeError("the engine wrote no video")
        job.result_path = path
        if job.frames_done:  # the frames written, not the header's estimate
            job.frames = job.frames_done
        frames = job.frames_done or job.frames or 1
        elapsed = time.time() - (job.started or time.time())
        self._calibrate("video", elapsed / (frames * self.planned("fast", task.height, task.width)))

    def _run_image(self, job: Job, task: Task, progress) -> None:
        out = self.engine.run(task, progress)
        if job.cancel_event.is_set():
            raise JobCancelled()
        if not isinstance(out, torch.Tensor) or out.ndim != 4 or out.shape[:2] != (1, 3):
            raise RuntimeError(f"engine returned {type(out).__name__} {getattr(out, 'shape', '')}")
        data = encode_image(out.detach().cpu().float().clamp(0, 1), "PNG", alpha=task.transparency)
        path = self.dir / f"{job.id}.png"
        with atomic_write(path, fsync=False) as tmp:  # a result is only served once renamed
            tmp.write_bytes(data)
        job.result_path = path
        elapsed = time.time() - (job.started or time.time())
        self._calibrate(job.method, elapsed / self.planned(job.method, job.height, job.width))

    def _calibrate(self, method: str, ratio: float) -> None:
        """The first run of a method replaces the plan's 1.0 (this machine may be much faster
        or slower than the one the plan was measured on); later runs move the average a little
        (one odd run does not swing the ETAs)."""
        with self._cond:
            if method in self._measured:
                self.calibration[method] = log_blend(self.calibration.get(method, 0.0), ratio, 0.3)
            else:
                self.calibration[method] = ratio
                self._measured.add(method)

    def _janitor(self) -> None:
        interval = min(30.0, max(0.05, self.settings.result_ttl / 4))
        while not self._stop.wait(interval):
            self.purge_expired()

    def purge_expired(self) -> int:
        """Delete finished jobs older than the TTL (and their files); returns how many."""
        now = time.time()
        with self._cond:
            old = [j for j in self._jobs.values()
                   if j.state in FINAL and j.finished is not None and now - j.finished >= self.settings.result_ttl]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            if job.result_path is not None:
                with contextlib.suppress(OSError):
                    job.result_path.unlink()
        return len(old)
