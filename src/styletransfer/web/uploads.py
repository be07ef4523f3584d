"""Request parsing: the body limit, the multipart form -> :class:`JobOptions` and a
:class:`~styletransfer.web.engine.Task` with decoded images, and every check that can refuse a
request before it is queued (400 bad image, 413 too large, 422 bad options or an image that
cannot be stylized at that size, 503 mode unavailable).

Decoding is :func:`styletransfer.image.load_image` (EXIF orientation, transparency, the pixel
guard); this module only adds the HTTP status of each refusal and the resizing to the result.
"""
from __future__ import annotations

import functools
import io
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ..errors import ImageError
from ..image import fit_size, from_array, load_image, resize
from . import styles as builtin_styles
from .config import Settings
from .engine import Task
from .schemas import FORM_FIELDS, MIN_SIDE, JobOptions, friendly

STYLE_SIDE = 512  # style images are reduced to this longest side (the statistics do not need more)
MIN_SHORT_SIDE = 16  # the stylizers need both sides of the result (and of a style) >= 16 px
_DECODE_SLOTS = threading.BoundedSemaphore(2)  # big decodes at once (memory bound), per process


def problem(status: int, message: str, headers: dict | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=message, headers=headers)


def invalid(field: str, message: str, kind: str = "value_error", value: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's shape, about one form field."""
    return RequestValidationError([{"type": kind, "loc": ("body", field), "msg": message, "input": value}])


# --- the body limit --------------------------------------------------------------------------
class BodyTooLarge(Exception):
    pass


def too_large_response(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"upload too large: the limit is {limit / 1024 / 1024:.1f} MB per request"},
                        status_code=413, headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Refuses request bodies over ``limit`` bytes with 413, in a way clients can read.

    A client that is still sending when the server answers and closes gets a connection reset
    instead of the answer (most HTTP clients report the failed write, not the 413). So the rest
    of an over-limit body is read and thrown away, up to ``drain_limit`` bytes in all, before the
    413 goes out; beyond that the connection is closed at once. A client that sent
    ``Expect: 100-continue`` has not sent its body yet and is answered at once.
    """

    def __init__(self, app, limit: int, drain_limit: int | None = None):
        self.app = app
        self.limit = limit
        self.drain_limit = drain_limit if drain_limit is not None else 4 * limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        try:
            declared = int(headers[b"content-length"]) if b"content-length" in headers else None
        except ValueError:
            declared = None
        if declared is not None and declared > self.limit:
            if not expects_continue and declared <= self.drain_limit:
                await self._drain(receive, 0)
            return await too_large_response(self.limit)(scope, receive, send)

        seen = 0
        more = True
        started = False

        async def limited_receive():
            nonlocal seen, more
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                more = bool(message.get("more_body", False))
                if seen > self.limit:
                    raise BodyTooLarge()
            elif message["type"] == "http.disconnect":
                more = False
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            if more:
                await self._drain(receive, seen)
            await too_large_response(self.limit)(scope, receive, send)

    async def _drain(self, receive, seen: int) -> None:
        """Read and drop the rest of the body (up to ``drain_limit`` bytes in all)."""
        while seen <= self.drain_limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


# --- images ----------------------------------------------------------------------------------
def output_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) of the result for a ``height`` x ``width`` photo and the ``size`` asked:
    the longest side becomes ``size``, never more than the photo's own, never under 64 px.

    >>> output_size(3000, 4000, 512), output_size(120, 160, 512), output_size(12, 24, 512)
    ((384, 512), (120, 160), (32, 64))
    """
    target = max(MIN_SIDE, min(size, max(height, width)))
    return fit_size(height, width, size=target)


def image_dimensions(data: bytes, what: str, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the header alone; 400 when unreadable, 413 over ``max_pixels``."""
    if not data:
        raise problem(400, f"{what}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
    except UnidentifiedImageError:
        raise problem(400, f"{what}: not an image (or a format the server cannot read)") from None
    except Exception:
        raise problem(400, f"{what}: corrupt or truncated image (cannot read its header)") from None
    if w * h > max_pixels:
        raise problem(413, f"{what}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}")
    return w, h


def check_shape(what: str, width: int, height: int, size: int, max_size: int) -> None:
    """422 for an image that can only fail: reduced to ``size`` its short side is under 16 px."""
    oh, ow = output_size(height, width, size)
    if min(oh, ow) >= MIN_SHORT_SIDE:
        return
    long_side, short_side = max(width, height), min(width, height)
    need = math.ceil(MIN_SHORT_SIDE * long_side / short_side)
    if short_side < MIN_SHORT_SIDE or need > min(max_size, long_side):
        advice = "crop it to a less elongated shape"
    else:
        advice = f"ask for size={need} or more, or crop it"
    raise invalid("content" if what == "content" else "style",
                  f"{what}: {width}x{height} is too narrow: at {ow}x{oh} the stylizers need both sides "
                  f">= {MIN_SHORT_SIDE} px; {advice}", kind="too_narrow")


def decode(data: bytes, what: str, max_pixels: int, side: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bytes -> (rgb, alpha) at the result size for ``side`` (:func:`output_size`); 400 when bad."""
    with _DECODE_SLOTS:
        try:
            loaded = load_image(data, max_pixels, reduce_to=2 * side)
        except ImageError as exc:
            raise problem(400, str(exc).replace("upload", what, 1)) from None
        except Exception:
            raise problem(400, f"{what}: corrupt or unsupported image") from None
    rgb, alpha = loaded.rgb, loaded.alpha
    hw = output_size(int(rgb.shape[-2]), int(rgb.shape[-1]), side)
    if hw != tuple(rgb.shape[-2:]):
        rgb = resize(rgb, hw).clamp(0, 1)
        if alpha is not None:
            alpha = resize(alpha, hw).clamp(0, 1)
    return rgb.contiguous(), alpha


@functools.lru_cache(maxsize=None)
def builtin_tensor(name: str) -> torch.Tensor:
    """A built-in style as a (1, 3, h, w) tensor, at most 512 px."""
    t = from_array(np.array(builtin_styles.style_array(name)))
    hw = fit_size(int(t.shape[-2]), int(t.shape[-1]), size=min(STYLE_SIDE, max(t.shape[-2:])))
    return resize(t, hw).clamp(0, 1).contiguous()


# --- the form --------------------------------------------------------------------------------
@dataclass
class FormParts:
    """A job request's form, read and checked, not yet decoded."""

    options: JobOptions
    content: bytes
    styles: list[bytes | str]  # uploaded bytes, or a built-in style's canonical name


async def read_form(request: Request, settings: Settings, sync: bool) -> FormParts:
    """The multipart form -> options, photo and styles; 422 for anything malformed."""
    form = await request.form(max_files=settings.max_styles + 1, max_fields=40, max_part_size=64 * 1024)
    try:
        content_parts = form.getlist("content")
        style_parts = form.getlist("style")
        raw: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key in FORM_FIELDS:
                continue
            if key in raw:
                raise invalid(key, f"option {key!r} given more than once", kind="duplicate")
            # an unknown file field is reported as an unknown option
            raw[key] = "(file)" if isinstance(value, UploadFile) else value
        if sync and "quality" in raw and raw["quality"] != "fast":
            raise invalid("quality", "the synchronous endpoint only runs quality=fast; use POST /api/v1/jobs for best",
                          kind="literal_error", value=raw["quality"])
        try:
            options = JobOptions.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError([friendly(e) for e in exc.errors()]) from None
        if len(content_parts) != 1 or not isinstance(content_parts[0], UploadFile):
            raise invalid("content", "send exactly one photo as the file field 'content'", kind="missing")
        if not style_parts:
            raise invalid("style", "send a style: an image file or a built-in name "
                                   f"({', '.join(builtin_styles.names())})", kind="missing")
        if len(style_parts) > settings.max_styles:
            raise invalid("style", f"at most {settings.max_styles} styles per job", kind="too_long")
        styles: list[bytes | str] = []
        for part in style_parts:
            if isinstance(part, UploadFile):
                styles.append(await part.read())
                continue
            name = builtin_styles.canonical(part)
            if name is None:
                raise invalid("style", f"unknown built-in style {part!r}; choose one of "
                                       f"{', '.join(builtin_styles.names())} or upload an image",
                              kind="enum", value=part)
            styles.append(name)
        if options.style_weights is not None and len(options.style_weights) != len(styles):
            raise invalid("style_weights", f"{len(options.style_weights)} weights for {len(styles)} styles")
        content = await content_parts[0].read()
        if len(content) > settings.max_upload_bytes:
            raise BodyTooLarge()
    finally:
        await form.close()
    return FormParts(options, content, styles)


def check_size(options: JobOptions, quality: str, settings: Settings) -> int:
    """The result side asked for (or the default), 422 over this quality's limit."""
    size = options.size or settings.default_size
    limit = settings.max_side(quality)
    if size > limit:
        raise invalid("size", f"size must be at most {limit} for quality={quality} on this server",
                      kind="less_than_equal", value=size)
    return size


def check_images(parts: FormParts, quality: str, size: int, settings: Settings) -> None:
    """400/413 for unreadable or too big images, 422 for ones too narrow to stylize."""
    w, h = image_dimensions(parts.content, "content", settings.max_pixels)
    check_shape("content", w, h, size, settings.max_side(quality))
    for i, blob in enumerate(parts.styles):
        if isinstance(blob, bytes):
            what = "style" if len(parts.styles) == 1 else f"style {i + 1}"
            sw, sh = image_dimensions(blob, what, settings.max_pixels)
            check_shape(what, sw, sh, STYLE_SIDE, STYLE_SIDE)


def build_task(parts: FormParts, quality: str, size: int, settings: Settings) -> tuple[Task, dict]:
    """Decode the images (blocking: run it in a thread) -> the task and its public options."""
    rgb, alpha = decode(parts.content, "content", settings.max_pixels, size)
    styles = []
    for i, blob in enumerate(parts.styles):
        if isinstance(blob, str):
            styles.append(builtin_tensor(blob))
        else:
            what = "style" if len(parts.styles) == 1 else f"style {i + 1}"
            styles.append(decode(blob, what, settings.max_pixels, STYLE_SIDE)[0])
    opts = parts.options
    keep = None if opts.keep_colors == "off" else opts.keep_colors
    task = Task(content=rgb, styles=styles, style_weights=opts.style_weights, strength=opts.strength,
                keep_colors=keep, quality=quality, seed=opts.seed, alpha=alpha)
    public = opts.model_dump()
    public.update(quality=quality, size=size, style=[p if isinstance(p, str) else "(upload)" for p in parts.styles])
    return task, public
