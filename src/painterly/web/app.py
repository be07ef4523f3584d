"""The FastAPI application: middleware, error handling, and the routes of :mod:`.routes`.

Errors always come back as JSON ``{"detail": ...}`` with the right status (400 bad image,
401 key, 404 unknown job, 409 not ready, 413 too large, 415 unreadable video, 422 bad options,
429 busy, 503 mode unavailable); an unexpected exception is logged on the server and answered with a
generic 500 that carries no traceback.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from .config import API_KEY_ENV, Settings
from .engine import Engine, LibraryEngine, video_unavailable
from .jobs import JobManager, QueueFull
from .routes import STATIC_DIR, Server, router
from .schemas import JobOptions, JobStatus
from .bodylimit import BodyLimitMiddleware, too_large_message

log = logging.getLogger("painterly.web")

DESCRIPTION = (
    "Create a job with `POST /api/v1/jobs` (multipart: `content` file, `style` file or "
    "built-in name, options), poll `GET /api/v1/jobs/{id}`, fetch `GET /api/v1/jobs/{id}/result`. "
    "A short video clip as `content` (limits in `GET /api/v1/health`) makes a video job: its progress "
    "counts frames and its result is an MP4. "
    "`POST /api/v1/stylize` runs the fast mode and returns the image directly. "
    "When the server has an API key, send it as `X-API-Key: KEY` or `Authorization: Bearer KEY`.")


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` defaults to the library's stylizers (:class:`LibraryEngine`)."""
    settings = settings or Settings()
    settings.validate()
    engine = engine or LibraryEngine()
    manager = JobManager(engine, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(title="painterly", version=__version__, lifespan=lifespan, description=DESCRIPTION,
                  summary="Neural style transfer: stylize a photo with a built-in or uploaded style.")
    app.state.server = Server(settings, manager, engine)
    app.state.settings = settings
    app.state.manager = manager
    app.state.engine = engine

    # Middleware: the body limit inside, CORS outside (so 413s carry CORS headers too).
    # The jobs endpoint also takes video clips: a larger request limit there (a photo keeps its own
    # limit, checked per part; a clip is checked against max_video_bytes).
    path_limits = {}
    if video_unavailable(engine) is None:
        jobs_limit = settings.max_upload_bytes + settings.max_video_bytes
        path_limits["/api/v1/jobs"] = (jobs_limit, too_large_message(settings.max_upload_bytes, jobs_limit))
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes, path_limits=path_limits)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["Retry-After", "Location", "X-Job-Id", "Content-Disposition"],
            max_age=600,
        )
    app.middleware("http")(security_headers)
    app.add_exception_handler(QueueFull, queue_full)
    app.add_exception_handler(Exception, internal_error)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    from .ondevice import mount_ondevice  # the page's on-device mode: model + onnxruntime-web files
    mount_ondevice(app, engine)
    return app


async def security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


async def queue_full(request: Request, exc: QueueFull):
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})


async def internal_error(request: Request, exc: Exception):
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


__all__ = ["create_app", "JobOptions", "JobStatus", "Settings", "API_KEY_ENV"]
