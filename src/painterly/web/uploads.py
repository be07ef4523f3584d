"""Request parsing (the body limit is :mod:`.bodylimit`): the multipart form -> :class:`JobOptions` and a
:class:`~painterly.web.engine.Task` with decoded images (or a
:class:`~painterly.web.engine.VideoTask` for a clip), and every check that can refuse a
request before it is queued (400 bad image, 413 too large, 415 a video the server cannot read,
422 bad options or an image that cannot be stylized at that size, 503 mode unavailable).

Decoding is :func:`painterly.image.load_image` (EXIF orientation, transparency, the pixel
guard) and, for a clip, :func:`painterly.video.probe_video`; this module only adds the
HTTP status of each refusal and the resizing to the result.
"""
from __future__ import annotations

import functools
import io
import math
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import ImageError, StyleTransferError
from ..image import fit_size, from_array, load_image, resize
from ..stylizers.weights import check_style_weights
from . import styles as builtin_styles
from .bodylimit import too_large_message
from .config import Settings
from .engine import Task, VideoTask
from .schemas import FORM_FIELDS, MIN_SIDE, VIDEO_ONLY, JobOptions, friendly, json_safe

STYLE_SIDE = 512  # style images are reduced to this longest side (the statistics do not need more)
MIN_SHORT_SIDE = 16  # the stylizers need both sides of the result (and of a style) >= 16 px
_DECODE_SLOTS = threading.BoundedSemaphore(2)  # big decodes at once (memory bound), per process


def problem(status: int, message: str, headers: dict | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=message, headers=headers)


def invalid(field: str, message: str, kind: str = "value_error", value: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's shape, about one form field."""
    return RequestValidationError([{"type": kind, "loc": ("body", field), "msg": message, "input": json_safe(value)}])


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
    content: bytes                         # the photo (empty for a video)
    styles: list[bytes | str]  # uploaded bytes, or a built-in style's canonical name
    video: Path | None = None              # a clip, copied to the server's folder (the caller owns it)
    fields: frozenset[str] = frozenset()   # the option fields the client sent


@dataclass
class VideoIntake:
    """How the server takes a clip: ``new_file(suffix)`` makes the file to copy it to;
    ``refusal`` says why it cannot (then a clip is answered 503)."""

    new_file: Callable[[str], Path]
    refusal: str | None = None


# Container extensions kept on the copied upload (FFmpeg guesses some formats from the name).
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".qt", ".3gp", ".3g2", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                  ".ts", ".mts", ".m2ts", ".ogv", ".ogg", ".flv", ".wmv", ".asf", ".y4m", ".h264", ".264", ".hevc"}
# ISO base media (``ftyp``) brands of still images: HEIC/AVIF are photos, not clips.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}


def looks_like_video(head: bytes) -> bool:
    """A video container by its first bytes: MP4/MOV/3GP, Matroska/WebM, AVI, Ogg, FLV,
    MPEG-PS/TS, ASF/WMV."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    return (head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip") or head.startswith(b"\x1aE\xdf\xa3")
            or (head.startswith(b"RIFF") and head[8:12] == b"AVI ") or head.startswith(b"OggS")
            or head.startswith(b"FLV\x01") or head.startswith(b"\x00\x00\x01\xba")
            or head.startswith(b"\x00\x00\x01\xb3")
            or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47)
            or head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"))


def is_video(file: BinaryIO, content_type: str | None) -> bool:
    """Whether an uploaded ``content`` is a clip: not an image Pillow reads, and a video
    container by its bytes or (for formats not sniffed here) by its declared type."""
    file.seek(0)
    head = file.read(256)
    file.seek(0)
    if not head:
        return False
    try:
        with Image.open(file) as probe:
            still = probe.format != "MPEG"  # Pillow's MPEG plugin only reads the header of a clip
    except Exception:
        still = False
    finally:
        file.seek(0)
    if still:
        return False
    return looks_like_video(head) or (content_type or "").lower().startswith("video/")


def copy_upload(src: BinaryIO, dst: Path) -> None:
    src.seek(0)
    with open(dst, "wb") as out:
        shutil.copyfileobj(src, out, 1024 * 1024)


async def read_form(request: Request, settings: Settings, sync: bool, video: VideoIntake | None = None) -> FormParts:
    """The multipart form -> options, photo (or clip) and styles; 422 for anything malformed.

    A clip is copied to ``video.new_file(...)`` (the caller deletes it); without ``video`` (or
    with its refusal) a clip is refused: 415 from the synchronous endpoint, else 503.
    """
    form = await request.form(max_files=settings.max_styles + 1, max_fields=40, max_part_size=64 * 1024)
    clip: Path | None = None
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
        for key in ("method", "quality"):  # quality: the deprecated name of method
            if sync and key in raw and raw[key] != "fast":
                raise invalid(key, f"the synchronous endpoint only runs {key}=fast; use POST /api/v1/jobs "
                                   "for method=optimize", kind="literal_error", value=raw[key])
        try:
            options = JobOptions.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError([friendly(e) for e in exc.errors()]) from None
        if len(content_parts) != 1 or not isinstance(content_parts[0], UploadFile):
            raise invalid("content", "send exactly one photo (or, to POST /api/v1/jobs, one video) as the file "
                                     "field 'content'", kind="missing")
        if not style_parts:
            raise invalid("style", "send a style: an image file or a built-in name "
                                   f"({', '.join(builtin_styles.names())})", kind="missing")
        if len(style_parts) > settings.max_styles:
            raise invalid("style", f"at most {settings.max_styles} styles per job", kind="too_long")
        part = content_parts[0]
        if await run_in_threadpool(is_video, part.file, part.content_type):
            if sync:
                raise problem(415, "content: the synchronous endpoint takes photos only; send a video to "
                                   "POST /api/v1/jobs (it answers with a job to poll)")
            if video is None or video.refusal:
                raise problem(503, f"content: this server does not take video: "
                                   f"{video.refusal if video else 'video is off'}")
            if options.method == "optimize":
                key = "quality" if "quality" in raw else "method"
                raise invalid(key, "video runs in method=fast (the optimisation takes minutes per frame)",
                              kind="literal_error", value=raw[key])
            size = part.size if part.size is not None else _file_size(part.file)
            if size > settings.max_video_bytes:
                raise problem(413, f"content: the video is {size / 1024 / 1024:.1f} MB; the limit is "
                                   f"{settings.max_video_bytes / 1024 / 1024:.1f} MB")
            suffix = Path(part.filename or "").suffix.lower()
            clip = video.new_file(suffix if suffix in VIDEO_SUFFIXES else "")
            await run_in_threadpool(copy_upload, part.file, clip)
        styles: list[bytes | str] = []
        style_bytes = 0
        for style_part in style_parts:
            if isinstance(style_part, UploadFile):
                style_bytes += style_part.size or 0
                if style_bytes > settings.max_upload_bytes:
                    raise problem(413, too_large_message(settings.max_upload_bytes))
                styles.append(await style_part.read())
                continue
            name = builtin_styles.canonical(style_part)
            if name is None:
                raise invalid("style", f"unknown built-in style {style_part!r}; choose one of "
                                       f"{', '.join(builtin_styles.names())} or upload an image",
                              kind="enum", value=style_part)
            styles.append(name)
        try:
            check_style_weights(options.style_weights, len(styles))
        except StyleTransferError as exc:
            raise invalid("style_weights", str(exc)) from None
        content = b""
        if clip is None:
            # the request limit may be a video's: a photo (and its styles) keep the image limit
            if (part.size or 0) + style_bytes > settings.max_upload_bytes:
                raise problem(413, too_large_message(settings.max_upload_bytes))
            content = await part.read()
            if len(content) + style_bytes > settings.max_upload_bytes:
                raise problem(413, too_large_message(settings.max_upload_bytes))
    except BaseException:
        if clip is not None:
            clip.unlink(missing_ok=True)
        raise
    finally:
        await form.close()
    return FormParts(options, content, styles, video=clip, fields=frozenset(raw))


def _file_size(file: BinaryIO) -> int:
    file.seek(0, io.SEEK_END)
    size = file.tell()
    file.seek(0)
    return size


def check_size(options: JobOptions, method: str, settings: Settings) -> int:
    """The result side asked for (or the default), 422 over this method's limit."""
    size = options.size or settings.default_size
    limit = settings.max_side(method)
    if size > limit:
        raise invalid("size", f"size must be at most {limit} for method={method} on this server",
                      kind="less_than_equal", value=size)
    return size


def check_images(parts: FormParts, method: str, size: int, settings: Settings) -> None:
    """400/413 for unreadable or too big images, 422 for ones too narrow to stylize."""
    w, h = image_dimensions(parts.content, "content", settings.max_pixels)
    check_shape("content", w, h, size, settings.max_side(method))
    check_styles(parts, settings)


def _style_name(parts: FormParts, i: int) -> str:
    return "style" if len(parts.styles) == 1 else f"style {i + 1}"


def check_styles(parts: FormParts, settings: Settings) -> None:
    """400/413 for unreadable or too big style images, 422 for ones too narrow."""
    for i, blob in enumerate(parts.styles):
        if isinstance(blob, bytes):
            what = _style_name(parts, i)
            sw, sh = image_dimensions(blob, what, settings.max_pixels)
            check_shape(what, sw, sh, STYLE_SIDE, STYLE_SIDE)


def decode_styles(parts: FormParts, settings: Settings) -> list[torch.Tensor]:
    """The styles as (1, 3, h, w) tensors of at most 512 px (blocking)."""
    return [builtin_tensor(blob) if isinstance(blob, str)
            else decode(blob, _style_name(parts, i), settings.max_pixels, STYLE_SIDE)[0]
            for i, blob in enumerate(parts.styles)]


def build_task(parts: FormParts, method: str, size: int, settings: Settings) -> tuple[Task, dict]:
    """Decode the images (blocking: run it in a thread) -> the task and its public options."""
    rgb, transparency = decode(parts.content, "content", settings.max_pixels, size)
    styles = decode_styles(parts, settings)
    opts = parts.options
    keep = None if opts.preserve_color == "off" else opts.preserve_color
    task = Task(content=rgb, styles=styles, style_weights=opts.style_weights, alpha=opts.alpha,
                preserve_color=keep, method=method, seed=opts.seed, transparency=transparency)
    public = opts.model_dump(exclude=set(VIDEO_ONLY))
    public.update(method=method, size=size, style=[p if isinstance(p, str) else "(upload)" for p in parts.styles])
    return task, public


# --- video -----------------------------------------------------------------------------------
def check_video_size(options: JobOptions, settings: Settings) -> int:
    """The result side asked for a clip (or the video default), 422 over the server's limit."""
    limit = settings.max_video_output_side()
    size = options.size or min(settings.video_default_size, limit)
    if size > limit:
        raise invalid("size", f"size must be at most {limit} for a video on this server",
                      kind="less_than_equal", value=size)
    return size


def build_video_task(parts: FormParts, size: int, settings: Settings) -> tuple[VideoTask, dict, int, int]:
    """Probe the clip and decode the styles (blocking: run it in a thread) -> the task, its
    public options and the result's (width, height) as shown. 415 for a file FFmpeg cannot read
    as a video, 422 for a clip without frames or options that do not fit it, 413 over the limits."""
    from ..errors import StyleTransferError
    from ..video import probe_video

    assert parts.video is not None
    try:
        info = probe_video(parts.video)
    except StyleTransferError as exc:
        raise problem(415, str(exc).replace(str(parts.video), "content")) from None
    if info.frames <= 0:
        raise invalid("content", "content: the video has no frames", kind="no_frames")
    w, h = info.width, info.height
    long_side, short_side = max(w, h), min(w, h)
    if long_side > settings.max_video_side or short_side > settings.max_video_short_side:
        raise problem(413, f"content: the video is {w}x{h}; the limit is {settings.max_video_side}x"
                           f"{settings.max_video_short_side} (either orientation): scale it down first")
    opts = parts.options
    start = opts.start or 0.0
    length = info.duration if info.duration is not None else info.frames / max(info.fps, 1e-6)
    if start > 0 and start >= length:
        raise invalid("start", f"start {start:g} s is past the end of the video ({length:.2f} s)",
                      kind="less_than", value=start)
    keep = length - start
    if opts.duration is not None:
        keep = min(keep, opts.duration)
    # a container's length is rounded up to its last packet (audio often runs a little longer)
    slack = 1.0 / max(info.fps, 1.0) + 0.05
    limit = settings.max_video_seconds
    if keep > limit + slack:
        raise problem(413, f"content: the video is {keep:.1f} s long; the limit is {limit:g} s "
                           "(send start and duration to stylize a part of it)")
    frames = info.frames if keep >= length - 1e-6 else max(1, round(keep * info.fps))
    if frames > settings.max_video_frames:
        raise problem(413, f"content: the video has {frames} frames ({info.fps:g} frames/s); the limit is "
                           f"{settings.max_video_frames}")
    side = min(size, long_side)
    out_h, out_w = info.output_size(side)
    if min(out_h, out_w) < MIN_SHORT_SIDE:
        raise invalid("content", f"content: {w}x{h} is too narrow: at {out_w}x{out_h} the stylizers need both "
                                 f"sides >= {MIN_SHORT_SIDE} px", kind="too_narrow")
    check_styles(parts, settings)
    styles = decode_styles(parts, settings)
    keep = None if opts.preserve_color == "off" else opts.preserve_color
    # the server's limit holds even if the header understated the length
    duration = min(opts.duration, limit + slack) if opts.duration is not None else limit + slack
    task = VideoTask(input=parts.video, styles=styles, frames=frames, height=out_h, width=out_w, size=side,
                     style_weights=opts.style_weights, alpha=opts.alpha, preserve_color=keep,
                     temporal=opts.temporal, audio=opts.audio, start=start, duration=duration)
    public = opts.model_dump(exclude={"format", "seed"})
    public.update(method="fast", size=side, format="mp4",
                  style=[p if isinstance(p, str) else "(upload)" for p in parts.styles])
    shown = (out_h, out_w) if info.rotation % 180 else (out_w, out_h)
    return task, public, shown[0], shown[1]
