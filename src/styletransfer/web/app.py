"""The FastAPI application: the page, the versioned HTTP API (/api/v1) and its error handling.

Errors always come back as JSON ``{"detail": ...}`` with the right status (400 bad image,
401 key, 404 unknown job, 409 not ready, 413 too large, 422 bad options, 429 busy,
503 mode unavailable); an unexpected exception is logged on the server and answered with a
generic 500 that carries no traceback.
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import io
import logging
import resource
import sys
import threading
from contextlib import asynccontextmanager
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from .. import __version__
from ..errors import ImageError
from ..image import fit_size, from_array, load_image, resize
from . import styles as builtin_styles
from .config import API_KEY_ENV, Settings
from .engine import FIXED_MPX, Engine, LibraryEngine, Task
from .jobs import SUCCEEDED, Job, JobManager, QueueFull

log = logging.getLogger("styletransfer.web")

STYLE_SIDE = 512  # style images are reduced to this longest side (the statistics do not need more)
MIN_SIDE = 64
STATIC_DIR = Path(str(importlib_resources.files("styletransfer.web").joinpath("static")))
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


# --- options ---------------------------------------------------------------------------------
class JobOptions(BaseModel):
    """Options of a stylization (multipart form fields besides ``content`` and ``style``)."""

    model_config = ConfigDict(extra="forbid")

    quality: Literal["fast", "best"] | None = Field(
        None, description="fast = instant feed-forward model; best = optimisation (minutes). "
                          "Default: fast when the server has the model, else best.")
    strength: float = Field(1.0, ge=0.0, le=1.0, description="0 = the photo unchanged, 1 = full style")
    keep_colors: Literal["off", "luminance", "histogram"] = Field(
        "off", description="keep the photo's colours: luminance (exact colours) or histogram; "
                           "true = luminance")
    size: int | None = Field(None, ge=MIN_SIDE, description="longest side of the result in pixels "
                                                            "(never more than the photo's own)")
    format: Literal["png", "jpeg"] = Field("png", description="format of the result")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random seed (best quality)")
    style_weights: list[float] | None = Field(
        None, description="comma-separated blend weights, one per style (e.g. 0.7,0.3)")

    @field_validator("keep_colors", mode="before")
    @classmethod
    def _bool_colors(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return "luminance" if v else "off"
        if isinstance(v, str):
            low = v.strip().lower()
            if low in ("true", "on", "yes", "1"):
                return "luminance"
            if low in ("false", "off", "no", "0", "", "none"):
                return "off"
            return low
        return v

    @field_validator("format", mode="before")
    @classmethod
    def _jpg(cls, v: Any) -> Any:
        return "jpeg" if isinstance(v, str) and v.lower() in ("jpg", "jpeg") else (v.lower() if isinstance(v, str) else v)

    @field_validator("style_weights", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p for p in (s.strip() for s in v.split(",")) if p]
        return v

    @field_validator("style_weights")
    @classmethod
    def _weights(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (any(w < 0 for w in v) or sum(v) <= 0):
            raise ValueError("style weights must be >= 0 and not all zero")
        return v


class JobStatus(BaseModel):
    """A job as the API reports it."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(description="0..1")
    percent: int
    eta_seconds: float | None = Field(description="estimated seconds until the result is ready")
    elapsed_seconds: float | None
    queue_position: int | None
    quality: str
    width: int
    height: int
    options: dict
    error: str | None
    created_at: float
    finished_at: float | None
    expires_at: float | None = Field(description="when the result will be deleted (unix time)")
    result_url: str | None = None
    status_url: str


class StyleInfo(BaseModel):
    name: str
    title: str
    description: str
    thumbnail_url: str
    image_url: str


FORM_FIELDS = {"content", "style"}


def _form_schema(sync: bool) -> dict:
    props: dict[str, Any] = {
        "content": {"type": "string", "format": "binary", "description": "the photo (PNG, JPEG, WebP...)"},
        "style": {"type": "array", "items": {"type": "string"},
                  "description": "one or more styles: an uploaded image file, or a built-in style name "
                                 "(see GET /api/v1/styles); repeat the field to blend several"},
    }
    schema = JobOptions.model_json_schema()
    for name, prop in schema["properties"].items():
        if sync and name == "quality":
            continue
        prop = dict(prop)
        if name == "style_weights":
            prop = {"type": "string", "description": prop.get("description", "")}
        props[name] = prop
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["content", "style"], "properties": props}}}}}


# --- errors ----------------------------------------------------------------------------------
class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses request bodies over the limit: by Content-Length up front, else while streaming."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    resp = _too_large_response(self.limit)
                    return await resp(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)


def _too_large_response(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"upload too large: the limit is {limit / 1024 / 1024:.1f} MB per request"},
                        status_code=413, headers={"Connection": "close"})


def _friendly(error: dict) -> dict:
    """A pydantic error -> FastAPI's 422 shape, with a plain message for unknown options."""
    out = {k: v for k, v in error.items() if k in ("type", "msg", "input")}
    out["loc"] = ("body", *error["loc"])
    if error.get("type") == "extra_forbidden":
        known = ", ".join(sorted([*FORM_FIELDS, *JobOptions.model_fields]))
        out["msg"] = f"unknown option {error['loc'][0]!r}; known fields: {known}"
    return out


def _problem(status: int, message: str, headers: dict | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=message, headers=headers)


# --- decoding --------------------------------------------------------------------------------
_DECODE_SLOTS = threading.BoundedSemaphore(2)  # big decodes at once (memory bound), per process


def _decode(data: bytes, what: str, max_pixels: int, side: int | None, upscale: bool = False):
    """Bytes -> (rgb, alpha) tensors reduced to ``side``; raises HTTPException 400/413."""
    if not data:
        raise _problem(400, f"{what}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
    except UnidentifiedImageError:
        raise _problem(400, f"{what}: not an image (or a format the server cannot read)") from None
    except Exception:
        raise _problem(400, f"{what}: corrupt or truncated image (cannot read its header)") from None
    if w * h > max_pixels:
        raise _problem(413, f"{what}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}")
    with _DECODE_SLOTS:
        if side is not None and w * h > 4 * side * side:
            data = _shrink(data, side)  # decode big photos straight to about the size we need
        try:
            loaded = load_image(data, max_pixels)
        except ImageError as exc:
            raise _problem(400, str(exc).replace("upload", what, 1)) from None
        except Exception:
            raise _problem(400, f"{what}: corrupt or unsupported image") from None
    rgb, alpha = loaded.rgb, loaded.alpha
    if side is not None:
        long_side = max(rgb.shape[-2:])
        target = side if upscale else min(side, long_side)
        target = max(target, MIN_SIDE)
        hw = fit_size(int(rgb.shape[-2]), int(rgb.shape[-1]), size=target)
        if hw != tuple(rgb.shape[-2:]):
            rgb = resize(rgb, hw).clamp(0, 1)
            if alpha is not None:
                alpha = resize(alpha, hw).clamp(0, 1)
    return rgb.contiguous(), alpha


def _shrink(data: bytes, side: int) -> bytes:
    """Big upload -> PNG bytes about 2x ``side`` (EXIF orientation applied), decoding JPEGs at
    reduced scale; the original bytes if anything is unusual (load_image then does it all)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("RGB", "RGBA", "L", "LA", "P", "CMYK", "YCbCr"):
                return data
            target = 2 * side
            if img.format == "JPEG":
                img.draft("RGB", (target, target))
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode not in ("RGB", "RGBA"):
                img = img.convert("RGBA" if img.mode in ("LA", "P") and "transparency" in img.info or img.mode == "LA"
                                  else "RGB")
            img.thumbnail((target, target), Image.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, "PNG", compress_level=1)
            return buf.getvalue()
    except Exception:
        return data


@functools.lru_cache(maxsize=None)
def _builtin_tensor(name: str) -> torch.Tensor:
    t = from_array(np.array(builtin_styles.style_array(name)))
    hw = fit_size(int(t.shape[-2]), int(t.shape[-1]), size=min(STYLE_SIDE, max(t.shape[-2:])))
    return resize(t, hw).clamp(0, 1).contiguous()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


# --- the app ---------------------------------------------------------------------------------
def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` defaults to the library's stylizers (tests pass a stub)."""
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

    app = FastAPI(
        title="styletransfer",
        version=__version__,
        summary="Neural style transfer: stylize a photo with a built-in or uploaded style.",
        description=(
            "Create a job with `POST /api/v1/jobs` (multipart: `content` file, `style` file or "
            "built-in name, options), poll `GET /api/v1/jobs/{id}`, fetch `GET /api/v1/jobs/{id}/result`. "
            "`POST /api/v1/stylize` runs the instant mode and returns the image directly. "
            "When the server has an API key, send it as `X-API-Key: KEY` or `Authorization: Bearer KEY`."),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.manager = manager
    app.state.engine = engine

    # Middleware: the body limit inside, CORS outside (so 413s carry CORS headers too).
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["Retry-After", "Location", "X-Job-Id", "Content-Disposition"],
            max_age=600,
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, exc: BodyTooLarge):
        return _too_large_response(settings.max_upload_bytes)

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, exc: QueueFull):
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    # --- auth --------------------------------------------------------------------------------
    def require_key(request: Request) -> None:
        if not settings.api_key:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not given or not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise _problem(401, "missing or wrong API key (send X-API-Key or Authorization: Bearer)",
                           {"WWW-Authenticate": "Bearer"})

    def modes() -> dict[str, bool]:
        try:
            return dict(engine.modes())
        except Exception:
            log.exception("engine.modes() failed")
            return {"fast": False, "best": False}

    def default_quality() -> str:
        return "fast" if modes().get("fast") else "best"

    def status_payload(job: Job) -> dict:
        data = manager.describe(job)
        data["status_url"] = f"/api/v1/jobs/{job.id}"
        data["result_url"] = f"/api/v1/jobs/{job.id}/result" if data["status"] == SUCCEEDED else None
        return data

    def get_job(job_id: str) -> Job:
        job = manager.get(job_id)
        if job is None:
            raise _problem(404, "no such job (unknown id, or its result expired)")
        return job

    # --- parsing a job request ---------------------------------------------------------------
    async def parse_request(request: Request, sync: bool) -> tuple[Task, dict]:
        form = await request.form(max_files=settings.max_styles + 1, max_fields=40,
                                  max_part_size=64 * 1024)
        try:
            content_parts = form.getlist("content")
            style_parts = form.getlist("style")
            raw: dict[str, Any] = {}
            dupes = []
            for key, value in form.multi_items():
                if key in FORM_FIELDS:
                    continue
                if isinstance(value, UploadFile):
                    raw[key] = "(file)"  # an unknown file field is reported as an unknown option
                    continue
                if key in raw:
                    dupes.append(key)
                raw[key] = value
            if dupes:
                raise RequestValidationError([{"type": "duplicate", "loc": ("body", dupes[0]),
                                               "msg": f"option {dupes[0]!r} given more than once", "input": None}])
            if sync and "quality" in raw and raw["quality"] != "fast":
                raise RequestValidationError([{"type": "literal_error", "loc": ("body", "quality"),
                                               "msg": "the synchronous endpoint only runs quality=fast; "
                                                      "use POST /api/v1/jobs for best", "input": raw["quality"]}])
            try:
                opts = JobOptions.model_validate(raw)
            except ValidationError as exc:
                raise RequestValidationError([_friendly(e) for e in exc.errors()]) from None
            if len(content_parts) != 1 or not isinstance(content_parts[0], UploadFile):
                raise RequestValidationError([{"type": "missing", "loc": ("body", "content"),
                                               "msg": "send exactly one photo as the file field 'content'",
                                               "input": None}])
            if not style_parts:
                raise RequestValidationError([{"type": "missing", "loc": ("body", "style"),
                                               "msg": "send a style: an image file or a built-in name "
                                                      f"({', '.join(builtin_styles.names())})", "input": None}])
            if len(style_parts) > settings.max_styles:
                raise RequestValidationError([{"type": "too_long", "loc": ("body", "style"),
                                               "msg": f"at most {settings.max_styles} styles per job", "input": None}])
            for part in style_parts:
                if isinstance(part, str) and part not in builtin_styles.STYLES:
                    raise RequestValidationError([{"type": "enum", "loc": ("body", "style"),
                                                   "msg": f"unknown built-in style {part!r}; choose one of "
                                                          f"{', '.join(builtin_styles.names())} or upload an image",
                                                   "input": part}])
            if opts.style_weights is not None and len(opts.style_weights) != len(style_parts):
                raise RequestValidationError([{"type": "value_error", "loc": ("body", "style_weights"),
                                               "msg": f"{len(opts.style_weights)} weights for {len(style_parts)} styles",
                                               "input": None}])
            size = opts.size or settings.default_size
            if size > settings.max_size:
                raise RequestValidationError([{"type": "less_than_equal", "loc": ("body", "size"),
                                               "msg": f"size must be at most {settings.max_size} on this server",
                                               "input": size}])
            available = modes()
            quality = "fast" if sync else (opts.quality or default_quality())
            if not available.get(quality):
                other = "best" if quality == "fast" else "fast"
                hint = f"; use quality={other}" if available.get(other) and not sync else ""
                raise _problem(503, f"the {quality} mode is not available on this server{hint}")

            content_bytes = await content_parts[0].read()
            if len(content_bytes) > settings.max_upload_bytes:
                raise BodyTooLarge()
            style_blobs = [await p.read() if isinstance(p, UploadFile) else p for p in style_parts]
        finally:
            await form.close()

        rgb, alpha = await run_in_threadpool(_decode, content_bytes, "content", settings.max_pixels, size)
        style_tensors = []
        for i, blob in enumerate(style_blobs):
            if isinstance(blob, str):
                style_tensors.append(await run_in_threadpool(_builtin_tensor, blob))
            else:
                what = "style" if len(style_blobs) == 1 else f"style {i + 1}"
                srgb, _ = await run_in_threadpool(_decode, blob, what, settings.max_pixels, STYLE_SIDE)
                style_tensors.append(srgb)
        keep = None if opts.keep_colors == "off" else opts.keep_colors
        task = Task(content=rgb, styles=style_tensors, style_weights=opts.style_weights, strength=opts.strength,
                    keep_colors=keep, quality=quality, seed=opts.seed, alpha=alpha)
        public = opts.model_dump()
        public["quality"] = quality
        public["size"] = size
        public["style"] = [p if isinstance(p, str) else "(upload)" for p in style_blobs]
        return task, public

    # --- routes ------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    @app.get("/api", include_in_schema=False)
    async def api_reference():
        return FileResponse(STATIC_DIR / "api.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    from .ondevice import mount_ondevice  # the page's on-device mode: model + onnxruntime-web files
    mount_ondevice(app, engine)

    @app.get("/api/v1/health", tags=["server"], summary="Server status, modes, limits and queue")
    async def health():
        return {
            "status": "ok",
            "version": __version__,
            "modes": modes(),
            "default_quality": default_quality(),
            "auth_required": bool(settings.api_key),
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "max_size": settings.max_size,
                "default_size": settings.default_size,
                "max_styles": settings.max_styles,
                "result_ttl_seconds": settings.result_ttl,
            },
            "queue": manager.stats(),
            # seconds one result at the default size takes, as measured so far (priors until then)
            "estimated_seconds": {q: round(rate * ((settings.default_size ** 2) * 0.75 / 1e6 + FIXED_MPX), 1)
                                  for q, rate in manager.speed.items()},
            "peak_rss_mb": _peak_rss_mb(),
        }

    @app.get("/api/v1/styles", tags=["styles"], response_model=list[StyleInfo], summary="List the built-in styles")
    async def list_styles():
        return [StyleInfo(name=s.name, title=s.title, description=s.description,
                          thumbnail_url=f"/api/v1/styles/{s.name}/thumbnail",
                          image_url=f"/api/v1/styles/{s.name}/image")
                for s in builtin_styles.STYLES.values()]

    def _style_or_404(name: str) -> str:
        if name not in builtin_styles.STYLES:
            raise _problem(404, f"no built-in style {name!r}")
        return name

    @app.get("/api/v1/styles/{name}/thumbnail", tags=["styles"], summary="A style's square JPEG thumbnail",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}},
                                                 404: {"description": "no such style"}})
    async def style_thumbnail(name: str):
        data = await run_in_threadpool(builtin_styles.thumbnail_jpeg, _style_or_404(name))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/api/v1/styles/{name}/image", tags=["styles"], summary="A style's full picture (JPEG)",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}},
                                                 404: {"description": "no such style"}})
    async def style_image(name: str):
        data = await run_in_threadpool(builtin_styles.image_jpeg, _style_or_404(name))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    common_errors = {
        400: {"description": "not an image, truncated or corrupt"},
        401: {"description": "API key missing or wrong"},
        413: {"description": "upload over the byte or pixel limit"},
        422: {"description": "unknown or invalid option"},
        429: {"description": "queue full; retry after Retry-After seconds"},
        503: {"description": "the requested quality is not available on this server"},
    }

    @app.post("/api/v1/jobs", tags=["jobs"], status_code=202, response_model=JobStatus,
              summary="Create a stylization job", dependencies=[Depends(require_key)],
              openapi_extra=_form_schema(sync=False), responses=common_errors)
    async def create_job(request: Request):
        task, public = await parse_request(request, sync=False)
        job = manager.submit(task, public)
        manager.start()
        body = status_payload(job)
        return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})

    @app.get("/api/v1/jobs/{job_id}", tags=["jobs"], response_model=JobStatus, summary="Status and progress of a job",
             dependencies=[Depends(require_key)], responses={404: {"description": "unknown or expired job"}})
    async def job_status(job_id: str):
        return status_payload(get_job(job_id))

    @app.delete("/api/v1/jobs/{job_id}", tags=["jobs"], response_model=JobStatus, summary="Cancel a job",
                dependencies=[Depends(require_key)], responses={404: {"description": "unknown or expired job"}})
    async def cancel_job(job_id: str):
        job = manager.cancel(get_job(job_id))
        return status_payload(job)

    @app.post("/api/v1/jobs/{job_id}/cancel", tags=["jobs"], response_model=JobStatus,
              summary="Cancel a job (same as DELETE, for clients that cannot send DELETE)",
              dependencies=[Depends(require_key)], responses={404: {"description": "unknown or expired job"}})
    async def cancel_job_post(job_id: str):
        return await cancel_job(job_id)

    async def image_response(job: Job, fmt: str | None, download: bool) -> Response:
        path = manager.result_file(job)
        if path is None:
            raise _problem(404, "the result is no longer available")
        fmt = (fmt or job.options.get("format") or "png").lower()
        stem = f"stylized-{job.id[:8]}"
        disposition = "attachment" if download else "inline"
        headers = {"X-Job-Id": job.id, "Cache-Control": "private, max-age=3600"}
        if fmt == "png":
            headers["Content-Disposition"] = f'{disposition}; filename="{stem}.png"'
            return FileResponse(path, media_type="image/png", headers=headers)
        data = await run_in_threadpool(_png_to_jpeg, path)
        headers["Content-Disposition"] = f'{disposition}; filename="{stem}.jpg"'
        return Response(data, media_type="image/jpeg", headers=headers)

    @app.get("/api/v1/jobs/{job_id}/result", tags=["jobs"], summary="The result image (PNG or JPEG)",
             dependencies=[Depends(require_key)], response_class=Response,
             responses={200: {"content": {"image/png": {}, "image/jpeg": {}}},
                        404: {"description": "unknown or expired job"},
                        409: {"description": "the job has not succeeded (yet)"}})
    async def job_result(job_id: str, format: Literal["png", "jpeg", "jpg"] | None = Query(None),
                         download: bool = Query(False)):
        job = get_job(job_id)
        if job.state != SUCCEEDED:
            detail = {"queued": "the job is still queued", "running": "the job is still running",
                      "cancelled": "the job was cancelled"}.get(job.state) or f"the job failed: {job.error}"
            raise _problem(409, detail)
        return await image_response(job, "jpeg" if format == "jpg" else format, download)

    @app.post("/api/v1/stylize", tags=["instant"], summary="Stylize in fast mode and return the image directly",
              dependencies=[Depends(require_key)], response_class=Response, openapi_extra=_form_schema(sync=True),
              responses={200: {"content": {"image/png": {}, "image/jpeg": {}}},
                         202: {"description": "took longer than the server's sync limit: the job goes on; "
                                              "poll the JSON status (Location header)"},
                         500: {"description": "the stylization failed"}, **common_errors})
    async def stylize_sync(request: Request):
        task, public = await parse_request(request, sync=True)
        # Refuse (429) what would likely not finish in time, rather than time out later.
        job = manager.submit(task, public, max_wait=0.8 * settings.sync_timeout)
        manager.start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def on_done(_job: Job) -> None:
            def _set():
                if not done.done():
                    done.set_result(None)
            loop.call_soon_threadsafe(_set)

        manager.add_done_callback(job, on_done)
        try:
            await asyncio.wait_for(asyncio.shield(done), settings.sync_timeout)
        except asyncio.TimeoutError:
            # Slower than expected: the job goes on; hand the client its status to poll.
            body = status_payload(job)
            return JSONResponse(body, status_code=202, headers={"Location": body["status_url"]})
        except asyncio.CancelledError:  # the client went away
            manager.cancel(job)
            raise
        if job.state != SUCCEEDED:
            if job.state == "cancelled":
                raise _problem(409, "the job was cancelled")
            status = 500 if job.error and job.error.startswith("internal error") else 400
            raise _problem(status, job.error or "the stylization failed")
        return await image_response(job, None, False)

    return app


def _png_to_jpeg(path: Path) -> bytes:
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA"):
            bg = Image.new("RGB", img.size, (255, 255, 255))
            bg.paste(img, mask=img.getchannel("A"))
            img = bg
        else:
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92)
        return buf.getvalue()


__all__ = ["create_app", "JobOptions", "JobStatus", "Settings", "API_KEY_ENV"]
