"""The endpoints of ``/api/v1`` and the page. Each handler finds the server's state (settings,
job manager, engine) in ``request.app.state.server``."""
from __future__ import annotations

import asyncio
import hmac
import logging
import resource
import sys
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..image import encode_image, load_image
from . import styles as builtin_styles
from .config import METHODS, Settings
from .engine import Engine, video_unavailable
from .jobs import SUCCEEDED, Job, JobManager
from .schemas import MIN_SIDE, Estimate, JobStatus, StyleInfo, form_schema
from .uploads import (VideoIntake, build_task, build_video_task, check_images, check_size, check_video_size,
                      output_size, problem, read_form)

log = logging.getLogger("painterly.web")

STATIC_DIR = Path(str(importlib_resources.files("painterly.web").joinpath("static")))
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
            "script-src 'self' 'wasm-unsafe-eval'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@dataclass
class Server:
    """What the handlers share: the settings, the job manager and the engine."""

    settings: Settings
    manager: JobManager
    engine: Engine

    def modes(self) -> dict[str, bool]:
        try:
            modes = dict(self.engine.modes())
        except Exception:
            log.exception("engine.modes() failed")
            return {"fast": False, "optimize": False}
        if "best" in modes:  # an engine written before the web said optimize
            modes.setdefault("optimize", modes.pop("best"))
        return modes

    def default_method(self) -> str:
        return "fast" if self.modes().get("fast") else "optimize"

    def video_refusal(self) -> str | None:
        """Why this server takes no video jobs (``None`` when it does)."""
        return video_unavailable(self.engine)

    def status(self, job: Job) -> dict:
        data = self.manager.describe(job)
        data["status_url"] = f"/api/v1/jobs/{job.id}"
        data["result_url"] = f"/api/v1/jobs/{job.id}/result" if data["status"] == SUCCEEDED else None
        return data

    def job(self, job_id: str) -> Job:
        job = self.manager.get(job_id)
        if job is None:
            raise problem(404, "no such job (unknown id, or its result expired)")
        return job


def server_of(request: Request) -> Server:
    return request.app.state.server


def require_key(request: Request) -> None:
    """401 unless the request carries the server's API key (when it has one)."""
    key = server_of(request).settings.api_key
    if not key:
        return
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not given or not hmac.compare_digest(given.encode(), key.encode()):
        raise problem(401, "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                      {"WWW-Authenticate": "Bearer"})


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


COMMON_ERRORS = {
    400: {"description": "not an image (or video), truncated or corrupt"},
    401: {"description": "API key missing or wrong"},
    413: {"description": "upload over the byte or pixel limit; a video over the duration, resolution or "
                         "frame limit (GET /api/v1/health: limits)"},
    415: {"description": "a video the server cannot read (no video stream, unknown codec); "
                         "POST /api/v1/stylize: any video (send it to POST /api/v1/jobs)"},
    422: {"description": "unknown or invalid option, an image too narrow to stylize at that size, "
                         "a video without frames"},
    429: {"description": "queue full; retry after Retry-After seconds"},
    503: {"description": "the requested method (or video) is not available on this server"},
}
NOT_FOUND = {404: {"description": "unknown or expired job"}}
IMAGE = {200: {"content": {"image/png": {}, "image/jpeg": {}}}}
IMAGE_OR_VIDEO = {200: {"description": "the result: an image, or an MP4 for a video job (Range requests "
                                       "supported)",
                        "content": {"image/png": {}, "image/jpeg": {}, "video/mp4": {}}}}

router = APIRouter()


# --- page ------------------------------------------------------------------------------------
def page_response(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html",
                        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
async def page():
    return page_response("index.html")


@router.get("/api", include_in_schema=False)
async def api_reference():
    return page_response("api.html")


# --- server and styles -----------------------------------------------------------------------
@router.get("/api/v1/health", tags=["server"], summary="Server status, modes, limits, sizes, speed and queue")
async def health(request: Request):
    server = server_of(request)
    s, manager = server.settings, server.manager
    h, w = output_size(3 * s.default_size, 4 * s.default_size, s.default_size)  # a 4:3 photo
    video_refusal = server.video_refusal()
    return {
        "status": "ok",
        "version": __version__,
        "modes": server.modes(),
        # video jobs (POST /api/v1/jobs with a clip as content); "video_unavailable" says why not
        "video": video_refusal is None,
        "video_unavailable": video_refusal,
        "default_method": server.default_method(),
        "auth_required": bool(s.api_key),
        "limits": {
            "max_upload_bytes": s.max_upload_bytes,
            "max_pixels": s.max_pixels,
            "max_size": s.max_size,
            "max_fast_size": s.max_fast_size,
            "min_size": MIN_SIDE,
            "default_size": s.default_size,
            "max_styles": s.max_styles,
            "result_ttl_seconds": s.result_ttl,
            "max_video_seconds": s.max_video_seconds,
            "max_video_bytes": s.max_video_bytes,
            "max_video_side": s.max_video_side,
            "max_video_short_side": s.max_video_short_side,
            "max_video_frames": s.max_video_frames,
            "video_default_size": s.video_default_size,
        },
        # result sides the page offers per method (largest = this server's limit), and for a video
        "size_choices": {m: s.size_choices(m) for m in METHODS},
        "video_size_choices": s.video_size_choices(),
        "queue": manager.stats(),
        # seconds a 4:3 result at the default size takes (the plan, corrected by measured runs);
        # GET /api/v1/estimate gives it for any photo and size
        "estimated_seconds": {m: round(manager.estimate(m, h, w), 1) for m in METHODS},
        "peak_rss_mb": peak_rss_mb(),
    }


@router.get("/api/v1/estimate", tags=["server"], response_model=Estimate,
            summary="Result size and run time for a photo (or video) of this size (before uploading it)")
async def estimate(request: Request, width: int = Query(..., ge=1, le=200_000),
                   height: int = Query(..., ge=1, le=200_000),
                   size: int | None = Query(None, ge=MIN_SIDE), method: Literal["fast", "optimize"] | None = Query(None),
                   quality: Literal["fast", "best"] | None = Query(
                       None, deprecated=True, description="deprecated: the old name of method (best = optimize)"),
                   frames: int | None = Query(None, ge=1, le=1_000_000,
                                              description="a video of this many frames (fast mode); "
                                                          "1 = the time per frame")):
    server = server_of(request)
    s = server.settings
    if frames is not None:  # a video: its own size default and limit, the measured time per frame
        side = min(size or min(s.video_default_size, s.max_video_output_side()), s.max_video_output_side(),
                   max(width, height))
        h, w = output_size(height, width, side)
        return Estimate(width=w, height=h, seconds=round(server.manager.estimate_video(h, w, frames), 1))
    method = method or {"best": "optimize"}.get(quality or "fast", quality or "fast")
    side = min(size or s.default_size, s.max_side(method))
    h, w = output_size(height, width, side)
    return Estimate(width=w, height=h, seconds=round(server.manager.estimate(method, h, w), 1))


@router.get("/api/v1/styles", tags=["styles"], response_model=list[StyleInfo], summary="List the built-in styles")
async def list_styles():
    return [StyleInfo(name=s.name, title=s.title, description=s.description,
                      thumbnail_url=f"/api/v1/styles/{s.name}/thumbnail", image_url=f"/api/v1/styles/{s.name}/image")
            for s in builtin_styles.STYLES.values()]


def style_or_404(name: str) -> str:
    canonical = builtin_styles.canonical(name)
    if canonical is None:
        raise problem(404, f"no built-in style {name!r}")
    return canonical


JPEG_OR_404 = {200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such style"}}


@router.get("/api/v1/styles/{name}/thumbnail", tags=["styles"], summary="A style's square JPEG thumbnail",
            response_class=Response, responses=JPEG_OR_404)
async def style_thumbnail(name: str):
    data = await run_in_threadpool(builtin_styles.thumbnail_jpeg, style_or_404(name))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/api/v1/styles/{name}/image", tags=["styles"], summary="A style's full picture (JPEG)",
            response_class=Response, responses=JPEG_OR_404)
async def style_image(name: str):
    data = await run_in_threadpool(builtin_styles.image_jpeg, style_or_404(name))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})


# --- jobs ------------------------------------------------------------------------------------
async def submit(request: Request, sync: bool) -> tuple[Server, Job, bool]:
    """Parse and check a job request, decode its images and queue it; the flag says the run
    alone is expected to outlast the synchronous endpoint's wait."""
    server = server_of(request)
    settings = server.settings
    intake = None if sync else VideoIntake(server.manager.upload_file, server.video_refusal())
    parts = await read_form(request, settings, sync, intake)
    if parts.video is not None:
        try:
            return server, await submit_video(server, parts), False
        except BaseException:
            parts.video.unlink(missing_ok=True)  # the queued job owns it once accepted
            raise
    modes = server.modes()
    method = "fast" if sync else (parts.options.method or server.default_method())
    if not modes.get(method):
        other = "optimize" if method == "fast" else "fast"
        hint = f"; use method={other}" if modes.get(other) and not sync else ""
        raise problem(503, f"the {method} mode is not available on this server{hint}")
    size = check_size(parts.options, method, settings)
    check_images(parts, method, size, settings)
    task, public = await run_in_threadpool(build_task, parts, method, size, settings)
    # Sync: refuse (429) what the queue ahead would delay past the wait; a run that alone takes
    # longer is accepted (waiting for a quieter server would not help) and handed back to poll.
    max_wait = 0.8 * settings.sync_timeout if sync else None
    too_long = sync and server.manager.estimate(method, *task.size) > max_wait
    job = server.manager.submit(task, public, max_wait=None if too_long else max_wait)
    server.manager.start()
    return server, job, too_long


async def submit_video(server: Server, parts) -> Job:
    """Probe the clip, check it against the limits and queue it (fast mode, every frame)."""
    size = check_video_size(parts.options, server.settings)
    task, public, width, height = await run_in_threadpool(build_video_task, parts, size, server.settings)
    job = server.manager.submit_video(task, public, width, height)
    server.manager.start()
    return job


@router.post("/api/v1/jobs", tags=["jobs"], status_code=202, response_model=JobStatus,
             summary="Create a stylization job (a photo, or a video clip: the result is then an MP4)", dependencies=[Depends(require_key)],
             openapi_extra=form_schema(sync=False), responses=COMMON_ERRORS)
async def create_job(request: Request):
    server, job, _ = await submit(request, sync=False)
    body = server.status(job)
    return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})


@router.get("/api/v1/jobs/{job_id}", tags=["jobs"], response_model=JobStatus, summary="Status and progress of a job",
            dependencies=[Depends(require_key)], responses=NOT_FOUND)
async def job_status(request: Request, job_id: str):
    server = server_of(request)
    return server.status(server.job(job_id))


@router.delete("/api/v1/jobs/{job_id}", tags=["jobs"], response_model=JobStatus, summary="Cancel a job",
               dependencies=[Depends(require_key)], responses=NOT_FOUND)
async def cancel_job(request: Request, job_id: str):
    server = server_of(request)
    return server.status(server.manager.cancel(server.job(job_id)))


@router.post("/api/v1/jobs/{job_id}/cancel", tags=["jobs"], response_model=JobStatus,
             summary="Cancel a job (same as DELETE, for clients that cannot send DELETE)",
             dependencies=[Depends(require_key)], responses=NOT_FOUND)
async def cancel_job_post(request: Request, job_id: str):
    return await cancel_job(request, job_id)


def jpeg_bytes(path) -> bytes:
    """A result PNG as JPEG (transparency composited over white)."""
    loaded = load_image(path)
    return encode_image(loaded.rgb, "JPEG", alpha=loaded.alpha)


async def image_response(server: Server, job: Job, fmt: str | None, download: bool) -> Response:
    path = server.manager.result_file(job)
    if path is None:
        raise problem(404, "the result is no longer available")
    stem = f"stylized-{job.id[:8]}"
    disposition = "attachment" if download else "inline"
    headers = {"X-Job-Id": job.id, "Cache-Control": "private, max-age=3600"}
    if job.kind == "video":
        if fmt is not None:
            raise problem(422, "a video job's result is an MP4: leave out format")
        # FileResponse answers Range requests (206), so a <video> can seek in it
        headers["Content-Disposition"] = f'{disposition}; filename="{stem}.mp4"'
        return FileResponse(path, media_type="video/mp4", headers=headers)
    fmt = (fmt or job.options.get("format") or "png").lower()
    if fmt == "png":
        headers["Content-Disposition"] = f'{disposition}; filename="{stem}.png"'
        return FileResponse(path, media_type="image/png", headers=headers)
    data = await run_in_threadpool(jpeg_bytes, path)
    headers["Content-Disposition"] = f'{disposition}; filename="{stem}.jpg"'
    return Response(data, media_type="image/jpeg", headers=headers)


@router.get("/api/v1/jobs/{job_id}/result", tags=["jobs"],
            summary="The result: an image (PNG or JPEG), or the MP4 of a video job",
            dependencies=[Depends(require_key)], response_class=Response,
            responses={**IMAGE_OR_VIDEO, **NOT_FOUND, 409: {"description": "the job has not succeeded (yet)"},
                       422: {"description": "format asked for a video job's result"}})
async def job_result(request: Request, job_id: str, format: Literal["png", "jpeg", "jpg"] | None = Query(None),
                     download: bool = Query(False)):
    server = server_of(request)
    job = server.job(job_id)
    if job.state != SUCCEEDED:
        detail = {"queued": "the job is still queued", "running": "the job is still running",
                  "cancelled": "the job was cancelled"}.get(job.state) or f"the job failed: {job.error}"
        raise problem(409, detail)
    return await image_response(server, job, "jpeg" if format == "jpg" else format, download)


def pending_response(server: Server, job: Job) -> JSONResponse:
    """202 with the job's status: it goes on, the client polls ``Location``."""
    body = server.status(job)
    return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})


@router.post("/api/v1/stylize", tags=["instant"], summary="Stylize in fast mode and return the image directly",
             dependencies=[Depends(require_key)], response_class=Response, openapi_extra=form_schema(sync=True),
             responses={**IMAGE, 202: {"description": "takes (or is expected to take) longer than the server's "
                                                      "sync limit: the job goes on; poll the JSON status "
                                                      "(Location header)"},
                        500: {"description": "the stylization failed"}, **COMMON_ERRORS})
async def stylize_sync(request: Request):
    server, job, too_long = await submit(request, sync=True)
    if too_long:
        return pending_response(server, job)
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def on_done(_job: Job) -> None:
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    server.manager.add_done_callback(job, on_done)
    try:
        await asyncio.wait_for(asyncio.shield(done), server.settings.sync_timeout)
    except asyncio.TimeoutError:  # slower than expected
        return pending_response(server, job)
    except asyncio.CancelledError:  # the client went away
        server.manager.cancel(job)
        raise
    if job.state != SUCCEEDED:
        if job.state == "cancelled":
            raise problem(409, "the job was cancelled")
        status = 500 if job.error and job.error.startswith("internal error") else 400
        raise problem(status, job.error or "the stylization failed")
    return await image_response(server, job, None, False)
