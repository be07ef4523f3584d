"""Media through PyAV (FFmpeg) and OpenCV: importing them, opening and probing an input, the
output's formats and size."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from ..errors import StyleTransferError
from .options import VideoError

# output extension -> FFmpeg muxer; all take H.264 video and AAC audio
VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def import_media():
    """``(av, cv2)``, or a one-line error naming the extra to install."""
    try:
        import av
        import cv2
    except ImportError as exc:
        raise StyleTransferError(f"video needs PyAV and OpenCV ({exc.name} is missing): "
                                 "pip install 'painterly[video]'") from None
    return av, cv2


def stream_rate(stream) -> Fraction:
    """The stream's frame rate (average, guessed or base; 30 when none is stated)."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return Fraction(30)


def check_video_output(path: str | Path, overwrite: bool = False, inputs: Sequence[str | Path] = ()) -> Path:
    """Validate the output before any work: type, folder exists and takes a new file, not an
    input, not taken (:func:`painterly.image.check_output_file` with the video formats)."""
    from ..image import check_output_file

    return check_output_file(path, VIDEO_FORMATS, overwrite, inputs, example="out.mp4", error=VideoError)


def open_input(av, path: Path):
    """Open ``path`` for reading; a one-line :class:`VideoError` when it is no video FFmpeg decodes."""
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
            raise VideoError(f"{path}: is an image, not a video (use: painterly stylize)")
        if not container.streams.video:
            raise VideoError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise VideoError(f"{path}: its video codec cannot be decoded by this FFmpeg build")
    except BaseException:
        container.close()
        raise
    return container


def frame_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """Longest side ``size`` (or the source's), both sides even (H.264 4:2:0 needs it)."""
    from ..image import fit_size

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
        return frame_size(self.height, self.width, size)


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's header and decode its first frame (cheap: nothing else is decoded).

    Raises:
        VideoError: as :func:`stylize_video` would for the input: no such file, not a video,
            an image, no video stream, a codec this FFmpeg cannot decode, or a first frame
            that fails to decode. A stream without any frame is ``frames == 0``, not an error.
    """
    av, _ = import_media()
    path = Path(path)
    with open_input(av, path) as container:
        vin = container.streams.video[0]
        rate = stream_rate(vin)
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
