"""Video: stylize a clip frame by frame, kept coherent in time with optical flow.

    for each frame I_t (decoded, stylized and encoded as it goes; memory = a few frames):
        w   = flow(I_t -> I_{t-1})                   DIS optical flow (Kroeger et al., 2016)
        M   = forward-backward consistent(w) and not a motion boundary and inside the frame
        S_t = stylize(I_t)                           the fast (AdaIN) method, or optimize started
                                                     from M * warp(O_{t-1}, w) + (1 - M) * I_t
        O_t = S_t + beta * M * (warp(O_{t-1}, w) - S_t)

The blend is a recursive filter along motion trajectories: where the previous output can be
followed (M = 1) the new frame leans towards it by ``beta``, so brush strokes stay on the
objects instead of boiling; where it cannot (occlusions, new content at the border, cuts) the
frame is its own stylization. The occlusion test is the forward-backward check of Sundaram et
al. (2010) as used for video style transfer by Ruder et al. (2016).

The optimize method is warm-started as in Ruder et al. (2016): every frame after the first starts
from the previous output warped onto it (the current photo where the warp is not valid) and needs
only ``warm_steps`` steps at the output's size, instead of the first frame's coarse-to-fine
schedule from the photo.

Consistency is measured with the warping error of Lai et al. (2018),

    E_warp = 1/(T-1) sum_t  sum_i M_t(i) ||O_t(i) - warp(O_{t-1})(i)||^2 / sum_i M_t(i)

(see :func:`warping_error` and ``benchmarks/bench_video.py``). The style's statistics are
computed once for the clip (``--preserve-color histogram`` recolours the styles to the first
frame, not to every frame, which would make the palette flicker).

Media work is PyAV (FFmpeg): any container/codec FFmpeg reads; the output is H.264 + AAC in
MP4/MOV/MKV with the source's timestamps (frame rate), display rotation and audio, written to a
temporary file in the output's folder and renamed at the end (Ctrl-C leaves nothing behind).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .atomic import atomic_write
from .errors import StyleTransferError

# output extension -> FFmpeg muxer; all take H.264 video and AAC audio
VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
METHODS = ("fast", "optimize")
DEFAULT_BLEND = 0.6  # fast method, four levels: chosen by benchmarks/bench_video.py (docs/video.md)
# optimize method: the warm start alone (blend 0) keeps frames coherent; a blend on top washes out
# the optimised texture (measured by benchmarks/bench_video_warm.py, docs/video.md)
DEFAULT_OPTIMIZE_BLEND = 0.0
DEFAULT_WARM_STEPS = 40  # chosen by benchmarks/bench_video_warm.py (docs/video.md)

ProgressCallback = Callable[[int, "int | None"], None]


class VideoError(StyleTransferError):
    """A video could not be read or written (not a video, no video stream, bad codec...)."""


@dataclass
class VideoOptions:
    """Options of :func:`stylize_video`.

    Attributes:
        method: ``"fast"`` (AdaIN, one pass per frame) or ``"optimize"`` (Gatys per frame: short clips).
        fast: :class:`~styletransfer.stylizers.fast.FastOptions` (alpha, style weights, masks,
            preserve_color, model, levels, transform, backend, tile, device) for the fast method: frames get
            every level of the model, as a photo does.
        optimize: :class:`~styletransfer.stylizers.optimize.OptimizeOptions` for the optimize method.
        size: longest side of the output in pixels; ``None`` = the source's size.
        start: seconds to skip at the beginning.
        duration: seconds to keep after ``start``; ``None`` = to the end.
        temporal: keep consecutive frames coherent with optical flow (``False`` = every frame
            stylized on its own).
        blend: ``beta`` above: how much a frame follows the warped previous output where the
            flow is reliable (0 = no blend, 1 = frozen); ``None`` = 0.6 for fast, 0 for optimize
            (whose warm start already follows the previous output).
        warm_steps: optimize with ``temporal``: the steps of every frame after the first, at the
            output's size only, started from the warped previous output (the first frame gets
            ``optimize``'s full coarse-to-fine schedule from the photo).
        audio: keep the audio stream (re-encoded to AAC).
        crf: H.264 quality (0 = lossless, 18 = visually lossless, 23 = x264's default).
    """

    method: str = "fast"
    fast: Any = None
    optimize: Any = None
    size: int | None = None
    start: float = 0.0
    duration: float | None = None
    temporal: bool = True
    blend: float | None = None
    warm_steps: int = DEFAULT_WARM_STEPS
    audio: bool = True
    crf: int = 18

    def validate(self) -> None:
        if self.method not in METHODS:
            raise StyleTransferError(f"method must be fast or optimize, got {self.method!r}")
        if self.size is not None and self.size < 16:
            raise StyleTransferError(f"size must be at least 16 px, got {self.size}")
        if not (self.start >= 0 and math.isfinite(self.start)):
            raise StyleTransferError(f"start must be >= 0 seconds, got {self.start}")
        if self.duration is not None and not (self.duration > 0 and math.isfinite(self.duration)):
            raise StyleTransferError(f"duration must be > 0 seconds, got {self.duration}")
        if self.blend is not None and not 0.0 <= self.blend < 1.0:
            raise StyleTransferError(f"blend must be in [0, 1), got {self.blend}")
        if not (isinstance(self.warm_steps, int) and self.warm_steps >= 1):
            raise StyleTransferError(f"warm_steps must be an int >= 1, got {self.warm_steps!r}")
        if not 0 <= self.crf <= 51:
            raise StyleTransferError(f"crf must be between 0 and 51, got {self.crf}")


    def effective_blend(self) -> float:
        """``blend``, or the method's default when it is ``None``."""
        if self.blend is not None:
            return self.blend
        return DEFAULT_OPTIMIZE_BLEND if self.method == "optimize" else DEFAULT_BLEND


@dataclass
class VideoResult:
    """What :func:`stylize_video` wrote."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    audio: bool
    seconds: float


def _import_media():
    try:
        import av
        import cv2
    except ImportError as exc:
        raise StyleTransferError(f"video needs PyAV and OpenCV ({exc.name} is missing): "
                                 "pip install 'styletransfer[video]'") from None
    return av, cv2


# ----- optical flow and the temporal blend -------------------------------------------------------

def _gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB (uint8 or float in [0, 1]) -> (H, W) uint8 luma for the flow."""
    _, cv2 = _import_media()
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def warp(image: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))`` (outside the frame: border copy).

    ``image`` (H, W, C) or (H, W) float32, ``flow`` (H, W, 2) in pixels (x, y). Bilinear, or
    bicubic with ``cubic`` (a recursive warp blurs less: bilinear at half-pixel shifts halves the
    finest detail every frame).
    """
    _, cv2 = _import_media()
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistent_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose flow to t-1 can be trusted: (H, W) float32 in {0, 1}.

    ``backward`` maps t -> t-1, ``forward`` t-1 -> t. A pixel is kept when (Sundaram et al.
    2010; Ruder et al. 2016) it lands inside frame t-1, the round trip returns near it,

        |w + w^(x + w)|^2 <= 0.01 (|w|^2 + |w^(x + w)|^2) + 0.5,

    and it is not on a motion boundary, |grad u|^2 + |grad v|^2 <= 0.01 |w|^2 + 0.002.
    """
    h, w = backward.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = gx + backward[..., 0], gy + backward[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    fwd_at = warp(forward, backward)
    round_trip = ((backward + fwd_at) ** 2).sum(-1)
    ok = round_trip <= 0.01 * ((backward ** 2).sum(-1) + (fwd_at ** 2).sum(-1)) + 0.5
    du = np.gradient(backward[..., 0])
    dv = np.gradient(backward[..., 1])
    grad2 = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2
    smooth = grad2 <= 0.01 * (backward ** 2).sum(-1) + 0.002
    return (inside & ok & smooth).astype(np.float32)


class FlowEstimator:
    """DIS optical flow (OpenCV) between two RGB frames, with the occlusion mask."""

    def __init__(self, preset: str = "medium") -> None:
        _, cv2 = _import_media()
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self._dis = cv2.DISOpticalFlow_create(presets[preset])

    def __call__(self, current: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flow current -> previous (``current(x) ~ previous(x + flow(x))``) and its valid mask."""
        g1, g0 = _gray(current), _gray(previous)
        backward = self._dis.calc(g1, g0, None)
        forward = self._dis.calc(g0, g1, None)
        return backward, consistent_mask(backward, forward)


class TemporalBlender:
    """``O_t = S_t + beta * M * (warp(O_{t-1}) - S_t)``, frame after frame (see the module doc).

    Holds only the previous input and output frames (and, between :meth:`warm_start` and the
    call on the same frame, that frame's flow). ``reset()`` starts over (e.g. at a cut).
    """

    def __init__(self, blend: float = DEFAULT_BLEND, flow: FlowEstimator | None = None, cubic: bool = True) -> None:
        self.blend, self.cubic = blend, cubic
        self.flow = flow or FlowEstimator()
        self.reset()

    def reset(self) -> None:
        self._prev_in: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self._motion: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (frame, flow, valid)

    def _flow(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Flow ``frame`` -> previous input and its valid mask; ``None`` with no previous frame."""
        if self._prev_in is None or self._prev_in.shape != frame.shape:
            return None
        if self._motion is None or self._motion[0] is not frame:  # once per frame
            self._motion = (frame, *self.flow(frame, self._prev_in))
        return self._motion[1], self._motion[2]

    def warm_start(self, frame: np.ndarray) -> np.ndarray | None:
        """Start image of an optimisation (Ruder et al. 2016): ``M warp(O_{t-1}) + (1 - M) I_t``.

        ``frame`` (H, W, 3) input RGB. Returns (H, W, 3) float32 in [0, 1], or ``None`` for the
        first frame (after ``reset()`` or a size change). Call it before ``blender(frame, ...)``:
        the flow is computed once for both.
        """
        motion = self._flow(frame)
        if motion is None:
            return None
        backward, valid = motion
        warped = warp(self._prev_out, backward, self.cubic)
        photo = frame.astype(np.float32) / 255 if frame.dtype == np.uint8 else frame.astype(np.float32)
        return np.clip(photo + valid[..., None] * (warped - photo), 0, 1)

    def __call__(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """``frame`` (H, W, 3) input RGB, ``stylized`` (H, W, 3) float32 in [0, 1] -> output float32."""
        out = stylized
        motion = self._flow(frame) if self.blend > 0 else None
        if motion is not None:
            backward, valid = motion
            warped = warp(self._prev_out, backward, self.cubic)
            out = stylized + (self.blend * valid)[..., None] * (warped - stylized)
        self._prev_in, self._prev_out = frame, out
        self._motion = None  # holds the frame: let it go with the next one
        return out


def warping_error(output: np.ndarray, previous: np.ndarray, flow: np.ndarray, valid: np.ndarray) -> float:
    """One term of Lai et al.'s (2018) warping error.

    ``mean over valid i of ||O_t(i) - warp(O_{t-1}, flow)(i)||^2`` with images (H, W, 3) in
    [0, 1], ``flow`` t -> t-1 and ``valid`` (H, W) the non-occluded pixels.
    """
    diff = ((output.astype(np.float32) - warp(previous.astype(np.float32), flow)) ** 2).sum(-1)
    return float((diff * valid).sum() / max(float(valid.sum()), 1.0))


# ----- per-frame stylization ---------------------------------------------------------------------

class _FrameStylizer:
    """Stylizes one (1, 3, H, W) frame with the clip's fixed styles and networks."""

    def __init__(self, styles: list[torch.Tensor], options: VideoOptions, encoder, decoder, fast=None) -> None:
        self.styles, self.options = styles, options
        self.encoder, self.decoder, self.fast = encoder, decoder, fast
        self._prepared = False

    def _prepare(self, first: torch.Tensor) -> None:
        """Once per clip: networks, and the styles recoloured to the first frame for ``histogram``."""
        from .device import resolve_device
        from .image import match_color

        o = self.options
        if o.method == "fast":
            from .stylizers.fast import FastOptions, FastStylizer

            fo = o.fast or FastOptions()
            fo.validate(len(self.styles))
            if self.fast is not None:  # given, built once (a server's)
                pass
            elif self.decoder is None:  # every level of the model, as a photo gets, with the encoder it needs
                self.fast = FastStylizer.from_model(fo.model, fo.device, fo.backend, encoder=self.encoder)
            else:
                from .encoders import vgg19

                self.fast = FastStylizer(self.encoder or vgg19(device=resolve_device(fo.device)), self.decoder)
            if fo.preserve_color == "histogram":
                self.styles = [match_color(s, first) for s in self.styles]
                fo = dataclasses.replace(fo, preserve_color=None)
            self.frame_options = fo
        else:
            from .stylizers.optimize import OptimizeOptions

            oo = o.optimize or OptimizeOptions()
            oo.validate(len(self.styles))
            if oo.preserve_color == "histogram":
                self.styles = [match_color(s, first) for s in self.styles]
                oo = dataclasses.replace(oo, preserve_color=None)
            if self.encoder is None:
                from .encoders import vgg19

                self.encoder = vgg19(device=resolve_device(oo.device), pooling=oo.pooling, weights=oo.weights)
            self.frame_options = oo
            # warm-started frames: one scale, the output's, so the start keeps all its detail
            self.warm_options = dataclasses.replace(oo, steps=[o.warm_steps])
        self._prepared = True

    def __call__(self, frame: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
        """Stylize ``frame``; ``init`` (optimize only) is a start image for a warm-started frame."""
        if not self._prepared:
            self._prepare(frame)
        if self.options.method == "fast":
            return self.fast(frame, self.styles, self.frame_options)
        from .stylizers.optimize import stylize_optimize

        if init is None:
            return stylize_optimize(frame, self.styles, self.frame_options, encoder=self.encoder)
        return stylize_optimize(frame, self.styles, self.warm_options, encoder=self.encoder, init_image=init)


# ----- input / output checks ---------------------------------------------------------------------

def parse_time(text: str) -> float:
    """``90``, ``90.5``, ``1:30`` or ``0:01:30.5`` -> seconds. On a clock, minutes and seconds
    are below 60 and only the seconds have a fraction (``1:99`` is a typo, not 159 s)."""
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        raise ValueError(f"expected seconds or [HH:]MM:SS, got {text!r}") from None
    if not 1 <= len(parts) <= 3 or any(not math.isfinite(p) or p < 0 for p in parts):
        raise ValueError(f"expected seconds or [HH:]MM:SS, got {text!r}")
    if any(p >= 60 for p in parts[1:]) or any(p != int(p) for p in parts[:-1]):
        raise ValueError(f"expected [HH:]MM:SS with whole hours and minutes and minutes and seconds "
                         f"below 60, got {text!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def check_video_output(path: str | Path, overwrite: bool = False, inputs: Sequence[str | Path] = ()) -> Path:
    """Validate the output before any work: type, folder exists and takes a new file, not an
    input, not taken (:func:`styletransfer.image.check_output_file` with the video formats)."""
    from .image import check_output_file

    return check_output_file(path, VIDEO_FORMATS, overwrite, inputs, example="out.mp4", error=VideoError)


def _open_input(av, path: Path):
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: not a video FFmpeg can read ({exc.strerror or exc})") from None
    fmt = container.format.name
    try:
        if fmt == "image2" or fmt.endswith("_pipe"):
            raise VideoError(f"{path}: is an image, not a video (use: styletransfer stylize)")
        if not container.streams.video:
            raise VideoError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise VideoError(f"{path}: its video codec cannot be decoded by this FFmpeg build")
    except BaseException:
        container.close()
        raise
    return container


def _output_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """Longest side ``size`` (or the source's), both sides even (H.264 4:2:0 needs it)."""
    from .image import fit_size

    h, w = fit_size(height, width, size=size) if size else (height, width)
    return max(2, h - h % 2), max(2, w - w % 2)


@dataclass
class VideoInfo:
    """What :func:`probe_video` found: the first video stream as :func:`stylize_video` reads it.

    ``width`` x ``height`` are the decoded frames' (before the display ``rotation``);
    ``duration`` is in seconds (``None`` when neither the container nor the stream says);
    ``frames`` is the stream's count, else ``duration`` x ``fps`` (0: no frame decodes).
    """

    width: int
    height: int
    fps: float
    duration: float | None
    frames: int
    rotation: int
    audio: bool
    format: str

    def output_size(self, size: int | None) -> tuple[int, int]:
        """(height, width) :func:`stylize_video` writes for ``VideoOptions.size = size``."""
        return _output_size(self.height, self.width, size)


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's header and decode its first frame (cheap: nothing else is decoded).

    Raises:
        VideoError: as :func:`stylize_video` would for the input: no such file, not a video,
            an image, no video stream, a codec this FFmpeg cannot decode, or a first frame
            that fails to decode. A stream without any frame is ``frames == 0``, not an error.
    """
    av, _ = _import_media()
    path = Path(path)
    with _open_input(av, path) as container:
        vin = container.streams.video[0]
        rate = _rate(vin)
        duration = container.duration / 1e6 if container.duration is not None else None
        if duration is None and vin.duration is not None and vin.time_base is not None:
            duration = float(vin.duration * vin.time_base)
        try:
            first = next(iter(container.decode(vin)), None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: cannot decode its first frame: {exc.strerror or exc}") from None
        frames = int(vin.frames or 0)
        if first is None:
            frames = 0
        elif not frames and duration is not None:
            frames = max(1, round(duration * float(rate)))
        elif not frames:  # no length in the header: count the packets (no decoding)
            frames = 1 + sum(1 for p in container.demux(vin) if p.size)
            duration = frames / float(rate)
        width = first.width if first is not None else vin.codec_context.width
        height = first.height if first is not None else vin.codec_context.height
        rotation = int((first.rotation if first is not None else 0) or 0)
        return VideoInfo(width=int(width), height=int(height), fps=float(rate), duration=duration,
                         frames=frames, rotation=rotation, audio=bool(container.streams.audio),
                         format=container.format.name)


# ----- the whole clip ----------------------------------------------------------------------------

def stylize_video(
    input: str | Path,
    styles: Sequence[Any],
    output: str | Path,
    options: VideoOptions | None = None,
    *,
    overwrite: bool = False,
    callback: ProgressCallback | None = None,
    encoder=None,
    decoder=None,
    stylizer=None,
) -> VideoResult:
    """Stylize the video ``input`` with one or more ``styles`` and write ``output`` (streaming).

    Args:
        input: a video file (any container/codec FFmpeg reads).
        styles: style images (paths, PIL images, arrays or tensors; see ``styletransfer.as_tensor``).
        output: ``.mp4``, ``.m4v``, ``.mov`` or ``.mkv`` (H.264 + AAC); written atomically.
        options: see :class:`VideoOptions`.
        overwrite: replace an existing ``output`` (an input is never overwritten).
        callback: ``callback(frames_done, frames_total_or_None)`` after every frame; may raise
            to cancel (nothing is written).
        encoder, decoder: networks to use instead of the pretrained ones (tests use tiny ones).
        stylizer: a :class:`~styletransfer.stylizers.fast.FastStylizer` to run the fast method
            with (a server's, built once); default: one of ``options.fast.model``.

    Returns:
        :class:`VideoResult`.

    Raises:
        StyleTransferError: bad input (not a video, no video stream, no frames, undecodable),
            bad options, output exists / is an input / folder not writable; all before any work
            when they can be known.
    """
    import time

    from .image import as_tensor

    av, _ = _import_media()
    opts = options or VideoOptions()
    opts.validate()
    style_list = list(styles)
    if not style_list:
        raise StyleTransferError("at least one style image is needed")
    in_path = Path(input)
    inputs = [in_path] + [s for s in style_list if isinstance(s, (str, Path))]
    out_path = check_video_output(output, overwrite, inputs)
    style_ts = [as_tensor(s) for s in style_list]
    stylizer = _FrameStylizer(style_ts, opts, encoder, decoder, stylizer)
    t_begin = time.perf_counter()

    container = _open_input(av, in_path)
    with container, contextlib.ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_write(out_path, suffix=".part"))
        except OSError as exc:
            raise VideoError(f"{out_path}: cannot write in its folder ({exc.strerror})") from None
        result = _transcode(av, container, in_path, tmp, out_path, opts, stylizer, callback)
    result.seconds = time.perf_counter() - t_begin
    return result


def _rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return Fraction(30)


def _transcode(av, container, in_path: Path, tmp: Path, out_path: Path, opts: VideoOptions,
               stylizer: _FrameStylizer, callback: ProgressCallback | None) -> VideoResult:
    from .image import from_array

    vin = container.streams.video[0]
    # slice threads only: with frame threads FFmpeg drops a frame that fails to decode without a
    # word (a cut file gave 5 of 16 frames, exit 0); decoding is a sliver of the stylizing time
    vin.thread_type = "SLICE"
    ain = container.streams.audio[0] if (opts.audio and container.streams.audio) else None
    if ain is not None and ain.codec_context is None:
        ain = None  # an audio codec this FFmpeg cannot decode: the video still works
    rate = _rate(vin)
    origin = container.start_time / 1e6 if container.start_time is not None else 0.0
    length = container.duration / 1e6 if container.duration is not None else None
    if length is not None and opts.start > 0 and opts.start >= length:
        raise VideoError(f"{in_path}: --start {opts.start:g} s is past the end of the video ({length:.2f} s)")
    total = None
    if vin.frames:
        total = vin.frames
    elif length is not None:
        total = round(length * float(rate))
    if total is not None:
        keep = (length - opts.start) if length is not None else total / float(rate)
        if opts.duration is not None:
            keep = min(keep, opts.duration)
        total = max(1, round(keep * float(rate)))
    start = origin + opts.start
    end = start + opts.duration if opts.duration is not None else math.inf
    if opts.start > 0:
        container.seek(int(start * 1e6), backward=True, any_frame=False)

    blender = TemporalBlender(opts.effective_blend()) if opts.temporal else None
    out = av.open(str(tmp), mode="w", format=VIDEO_FORMATS[out_path.suffix.lower()])
    state: dict[str, Any] = {"base": None, "vout": None, "aout": None, "last_pts": -1, "frames": 0,
                             "a_next": 0, "pending": [], "video_done": False, "audio_done": ain is None}
    try:
        streams = [vin] + ([ain] if ain is not None else [])
        for packet, frames in _decoded(av, container, streams, in_path, state):
            if packet.stream is vin:
                _note_read(packet, state)
            for frame in frames:
                if packet.stream is vin:
                    _video_frame(av, frame, vin, rate, start, end, opts, out, ain, state,
                                 stylizer, blender, from_array, callback, total)
                else:
                    _audio_frame(av, frame, start, end, out, state)
            if state["video_done"] and state["audio_done"]:
                break
        if state["frames"] == 0:
            where = f" after --start {opts.start:g} s" if opts.start > 0 else ""
            raise VideoError(f"{in_path}: no video frames{where}")
        if not state["video_done"]:
            _check_complete(vin, rate, start, end, in_path, state)
        for s in (state["vout"], state["aout"]):
            if s is not None:
                for p in s.encode(None):
                    out.mux(p)
    finally:
        out.close()
    vout = state["vout"]
    return VideoResult(out_path, state["frames"], float(rate), vout.width, vout.height,
                       state["aout"] is not None, 0.0)


def _note_read(packet, state: dict) -> None:
    """Remember where the video packets read so far end (seconds, the file's clock)."""
    if packet.size and packet.pts is not None and packet.time_base is not None:
        packet_end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        state["read_to"] = max(state.get("read_to", -math.inf), packet_end)


def _check_complete(vin, rate: Fraction, start: float, end: float, in_path: Path, state: dict) -> None:
    """Refuse a file whose video packets stop well before the end its header states (a cut
    download or copy: FFmpeg reads what is there and stops without an error)."""
    if vin.duration is None or vin.time_base is None or "read_to" not in state:
        return  # the header states no length (e.g. Matroska): nothing to compare with
    stated = float((vin.duration + (vin.start_time or 0)) * vin.time_base)
    read_to = state["read_to"]
    if min(end, stated) - read_to > 1.0 / float(rate) + 0.05:
        readable = max(0.0, read_to - start - 1.0 / float(rate))
        raise VideoError(f"{in_path}: the video stops after {read_to:.2f} s of its {stated:.2f} s (a truncated "
                         f"file?); {state['frames']} frames read; --duration {readable:.2f} stylizes the part "
                         "that reads")


def _decoded(av, container, streams, in_path: Path, state: dict):
    """(packet, its decoded frames) in file order; FFmpeg's read/decode errors become one line.

    Only reading and decoding are guarded: an encoding or writing error (disk full) keeps its own
    message.
    """
    packets = container.demux(*streams)
    while True:
        try:
            packet = next(packets)
            frames = packet.decode()
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            raise VideoError(f"{in_path}: cannot decode frame {state['frames'] + 1}: "
                             f"{exc.strerror or exc}") from None
        yield packet, frames


def _setup_output(av, out, vin, ain, rate: Fraction, width: int, height: int, rotation: int,
                  opts: VideoOptions, state: dict) -> None:
    vout = out.add_stream("libx264", rate=rate)
    vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
    vout.codec_context.time_base = vin.time_base  # the source's timestamps: variable frame rate survives
    vout.time_base = vin.time_base
    vout.options = {"crf": str(opts.crf), "preset": "medium"}
    if rotation:
        vout.set_display_rotation(rotation)
    state["vout"] = vout
    if ain is not None:
        layout = ain.codec_context.layout.name
        rate_a = ain.codec_context.sample_rate
        try:
            aout = out.add_stream("aac", rate=rate_a, layout=layout)
        except (av.error.FFmpegError, ValueError) as exc:
            raise VideoError(f"cannot encode the audio ({layout}, {rate_a} Hz) as AAC: {exc}; "
                             "use --no-audio to drop it") from None
        state["aout"] = aout
        state["resampler"] = av.AudioResampler(format="fltp", layout=layout, rate=rate_a)


def _video_frame(av, frame, vin, rate, start, end, opts, out, ain, state, stylizer, blender, from_array,
                 callback, total) -> None:
    t = float(frame.time) if frame.pts is not None else start + state["frames"] / float(rate)
    if t < start - 1e-6 or state["video_done"]:
        return
    if t >= end - 1e-6:
        state["video_done"] = True
        return
    if state["vout"] is None:  # the first kept frame fixes the size, rotation and time origin
        h, w = _output_size(frame.height, frame.width, opts.size)
        state["size"] = (h, w)
        state["base"] = t
        _setup_output(av, out, vin, ain, rate, w, h, int(frame.rotation or 0), opts, state)
        pending, state["pending"] = state["pending"], []
        for item in pending:
            _write_audio(av, *item, end, out, state)
    h, w = state["size"]
    rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    init = blender.warm_start(rgb) if blender is not None and opts.method == "optimize" else None
    styled = stylizer(from_array(rgb), None if init is None else from_array(init))
    styled = styled[0].permute(1, 2, 0).numpy().astype(np.float32)
    if blender is not None:
        styled = blender(rgb, styled)
    vout = state["vout"]
    pts = round((t - state["base"]) / vout.time_base)
    pts = max(pts, state["last_pts"] + 1)
    state["last_pts"] = pts
    vf = av.VideoFrame.from_ndarray((np.clip(styled, 0, 1) * 255 + 0.5).astype(np.uint8), format="rgb24")
    vf.pts, vf.time_base = pts, vout.time_base
    for p in vout.encode(vf):
        out.mux(p)
    state["frames"] += 1
    if callback is not None:
        callback(state["frames"], total)


def _audio_frame(av, frame, start, end, out, state) -> None:
    if state["audio_done"] or frame.pts is None:
        return
    t = float(frame.time)
    if t >= end:
        state["audio_done"] = True
        return
    if state["vout"] is None:  # until the first video frame fixes the time origin
        state["pending"].append((frame, t))
        if len(state["pending"]) > 1000:  # ~20 s of audio before any video: keep memory bounded
            state["pending"].pop(0)
        return
    _write_audio(av, frame, t, end, out, state)


def _write_audio(av, frame, t: float, end: float, out, state) -> None:
    """Resample to float planar, keep the samples in [base, end), encode at their own time."""
    aout = state.get("aout")
    if aout is None:
        return
    rate = aout.codec_context.sample_rate
    for rf in state["resampler"].resample(frame):
        data = rf.to_ndarray()  # (channels, samples) float32
        i0 = max(0, math.ceil((state["base"] - t) * rate - 1e-6))
        i1 = min(data.shape[1], math.floor((end - t) * rate + 1e-6)) if math.isfinite(end) else data.shape[1]
        t += data.shape[1] / rate
        if i1 <= i0:
            continue
        chunk = np.ascontiguousarray(data[:, i0:i1])
        af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=aout.codec_context.layout.name)
        af.sample_rate = rate
        pts = round((t - data.shape[1] / rate + i0 / rate - state["base"]) * rate)
        af.pts = max(pts, state["a_next"])
        af.time_base = Fraction(1, rate)
        state["a_next"] = af.pts + chunk.shape[1]
        for p in aout.encode(af):
            out.mux(p)
