"""The PyAV (FFmpeg) transcoder: decode a clip's window, hand every kept frame to a function,
encode the results as H.264 (and the audio as AAC) with the source's timestamps and rotation.

Streaming: one decoded frame at a time. Read and decode errors become a one-line
:class:`~painterly.video.options.VideoError`; a file whose packets stop well before the
length its header states (a cut download) is refused rather than silently shortened.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from .media import frame_size, import_media, stream_rate
from .options import ProgressCallback, VideoError, VideoOptions, VideoResult

FrameFunction = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 RGB -> (H, W, 3) float32 in [0, 1]


class Transcoder:
    """One pass over an opened input ``container``: the window ``[start, start + duration)`` of
    ``options``, its frames through a function, into an output file.

    The first kept video frame fixes the output's size, rotation and time origin (audio decoded
    before it waits in a bounded queue).
    """

    def __init__(self, container, in_path: Path, options: VideoOptions) -> None:
        self.av, _ = import_media()
        self.container, self.in_path, self.options = container, in_path, options
        self.vin = container.streams.video[0]
        # slice threads only: with frame threads FFmpeg drops a frame that fails to decode without a
        # word (a cut file gave 5 of 16 frames, exit 0); decoding is a sliver of the stylizing time
        self.vin.thread_type = "SLICE"
        self.ain = self._audio_input()
        self.rate = stream_rate(self.vin)
        self.start, self.end, self.total = self._window()
        self.out = self.vout = self.aout = self.resampler = None
        self.base: float | None = None  # the time of the first kept frame: the output's zero
        self.size: tuple[int, int] | None = None  # (height, width) of the output
        self.last_pts, self.frames, self.a_next = -1, 0, 0
        self.pending: list[tuple] = []  # (audio frame, time) read before the first video frame
        self.video_done, self.audio_done = False, self.ain is None
        self.read_to = -math.inf  # where the video packets read so far end (seconds)

    def _audio_input(self):
        """The audio stream to keep, or ``None`` (no audio, ``audio=False``, or not decodable)."""
        streams = self.container.streams.audio
        ain = streams[0] if (self.options.audio and streams) else None
        if ain is not None and ain.codec_context is None:
            return None  # an audio codec this FFmpeg cannot decode: the video still works
        return ain

    def _window(self) -> tuple[float, float, int | None]:
        """(start, end) on the file's clock and the expected frame count (``None``: unknown)."""
        opts, container, rate = self.options, self.container, float(self.rate)
        origin = container.start_time / 1e6 if container.start_time is not None else 0.0
        length = container.duration / 1e6 if container.duration is not None else None
        if length is not None and opts.start > 0 and opts.start >= length:
            raise VideoError(f"{self.in_path}: --start {opts.start:g} s is past the end of the video "
                             f"({length:.2f} s)")
        total = self.vin.frames or (round(length * rate) if length is not None else None)
        if total is not None:
            keep = (length - opts.start) if length is not None else total / rate
            if opts.duration is not None:
                keep = min(keep, opts.duration)
            total = max(1, round(keep * rate))
        start = origin + opts.start
        end = start + opts.duration if opts.duration is not None else math.inf
        return start, end, total

    def run(self, tmp: Path, muxer: str, render: FrameFunction,
            callback: ProgressCallback | None = None) -> VideoResult:
        """Write the stylized window to ``tmp`` (format ``muxer``), ``render`` on every frame;
        ``callback(frames_done, frames_total_or_None)`` after each. ``seconds`` is left at 0."""
        if self.options.start > 0:
            self.container.seek(int(self.start * 1e6), backward=True, any_frame=False)
        self.out = self.av.open(str(tmp), mode="w", format=muxer)
        try:
            self._pump(render, callback)
            self._finish()
        finally:
            self.out.close()
        return VideoResult(tmp, self.frames, float(self.rate), self.vout.width, self.vout.height,
                           self.aout is not None, 0.0)

    def _pump(self, render: FrameFunction, callback: ProgressCallback | None) -> None:
        """Decode in file order until both streams pass the window's end (or the file ends)."""
        streams = [self.vin] + ([self.ain] if self.ain is not None else [])
        for packet, frames in self._decoded(streams):
            is_video = packet.stream is self.vin
            if is_video:
                self._note_read(packet)
            for frame in frames:
                if is_video:
                    self._video_frame(frame, render, callback)
                else:
                    self._audio_frame(frame)
            if self.video_done and self.audio_done:
                break

    def _finish(self) -> None:
        """Refuse an empty or cut window, then flush the encoders."""
        if self.frames == 0:
            where = f" after --start {self.options.start:g} s" if self.options.start > 0 else ""
            raise VideoError(f"{self.in_path}: no video frames{where}")
        if not self.video_done:
            self._check_complete()
        for stream in (self.vout, self.aout):
            if stream is not None:
                for p in stream.encode(None):
                    self.out.mux(p)

    def _decoded(self, streams):
        """(packet, its decoded frames) in file order; FFmpeg's read/decode errors become one line.

        Only reading and decoding are guarded: an encoding or writing error (disk full) keeps its
        own message.
        """
        packets = self.container.demux(*streams)
        while True:
            try:
                packet = next(packets)
                frames = packet.decode()
            except StopIteration:
                return
            except self.av.error.FFmpegError as exc:
                raise VideoError(f"{self.in_path}: cannot decode frame {self.frames + 1}: "
                                 f"{exc.strerror or exc}") from None
            yield packet, frames

    def _note_read(self, packet) -> None:
        """Remember where the video packets read so far end (seconds, the file's clock)."""
        if packet.size and packet.pts is not None and packet.time_base is not None:
            self.read_to = max(self.read_to, float((packet.pts + (packet.duration or 0)) * packet.time_base))

    def _check_complete(self) -> None:
        """Refuse a file whose video packets stop well before the end its header states (a cut
        download or copy: FFmpeg reads what is there and stops without an error)."""
        vin = self.vin
        if vin.duration is None or vin.time_base is None or self.read_to == -math.inf:
            return  # the header states no length (e.g. Matroska): nothing to compare with
        stated = float((vin.duration + (vin.start_time or 0)) * vin.time_base)
        step = 1.0 / float(self.rate)
        if min(self.end, stated) - self.read_to > step + 0.05:
            readable = max(0.0, self.read_to - self.start - step)
            raise VideoError(f"{self.in_path}: the video stops after {self.read_to:.2f} s of its {stated:.2f} s "
                             f"(a truncated file?); {self.frames} frames read; --duration {readable:.2f} "
                             "stylizes the part that reads")

    def _setup_output(self, width: int, height: int, rotation: int) -> None:
        """The H.264 stream on the source's time base (variable frame rate survives), and AAC."""
        vout = self.out.add_stream("libx264", rate=self.rate)
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.codec_context.time_base = self.vin.time_base
        vout.time_base = self.vin.time_base
        vout.options = {"crf": str(self.options.crf), "preset": "medium"}
        if rotation:
            vout.set_display_rotation(rotation)
        self.vout = vout
        if self.ain is not None:
            layout = self.ain.codec_context.layout.name
            rate_a = self.ain.codec_context.sample_rate
            try:
                self.aout = self.out.add_stream("aac", rate=rate_a, layout=layout)
            except (self.av.error.FFmpegError, ValueError) as exc:
                raise VideoError(f"cannot encode the audio ({layout}, {rate_a} Hz) as AAC: {exc}; "
                                 "use --no-audio to drop it") from None
            self.resampler = self.av.AudioResampler(format="fltp", layout=layout, rate=rate_a)

    def _video_frame(self, frame, render: FrameFunction, callback: ProgressCallback | None) -> None:
        """Render and encode one decoded frame if it falls in the window."""
        t = float(frame.time) if frame.pts is not None else self.start + self.frames / float(self.rate)
        if t < self.start - 1e-6 or self.video_done:
            return
        if t >= self.end - 1e-6:
            self.video_done = True
            return
        if self.vout is None:
            self._first_frame(frame, t)
        h, w = self.size
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        self._encode(render(rgb), t)
        self.frames += 1
        if callback is not None:
            callback(self.frames, self.total)

    def _first_frame(self, frame, t: float) -> None:
        """The first kept frame fixes the size, rotation and time origin; the queued audio goes out."""
        h, w = frame_size(frame.height, frame.width, self.options.size)
        self.size, self.base = (h, w), t
        self._setup_output(w, h, int(frame.rotation or 0))
        pending, self.pending = self.pending, []
        for audio, at in pending:
            self._write_audio(audio, at)

    def _encode(self, styled: np.ndarray, t: float) -> None:
        """Encode a float frame at time ``t`` (strictly increasing timestamps)."""
        vout = self.vout
        pts = max(round((t - self.base) / vout.time_base), self.last_pts + 1)
        self.last_pts = pts
        vf = self.av.VideoFrame.from_ndarray((np.clip(styled, 0, 1) * 255 + 0.5).astype(np.uint8), format="rgb24")
        vf.pts, vf.time_base = pts, vout.time_base
        for p in vout.encode(vf):
            self.out.mux(p)

    def _audio_frame(self, frame) -> None:
        """Queue (before the first video frame) or write one decoded audio frame of the window."""
        if self.audio_done or frame.pts is None:
            return
        t = float(frame.time)
        if t >= self.end:
            self.audio_done = True
            return
        if self.vout is None:  # until the first video frame fixes the time origin
            self.pending.append((frame, t))
            if len(self.pending) > 1000:  # ~20 s of audio before any video: keep memory bounded
                self.pending.pop(0)
            return
        self._write_audio(frame, t)

    def _write_audio(self, frame, t: float) -> None:
        """Resample to float planar, keep the samples in [base, end), encode at their own time."""
        aout, end = self.aout, self.end
        if aout is None:
            return
        rate = aout.codec_context.sample_rate
        for rf in self.resampler.resample(frame):
            data = rf.to_ndarray()  # (channels, samples) float32
            i0 = max(0, math.ceil((self.base - t) * rate - 1e-6))
            i1 = min(data.shape[1], math.floor((end - t) * rate + 1e-6)) if math.isfinite(end) else data.shape[1]
            t += data.shape[1] / rate
            if i1 <= i0:
                continue
            chunk = np.ascontiguousarray(data[:, i0:i1])
            af = self.av.AudioFrame.from_ndarray(chunk, format="fltp", layout=aout.codec_context.layout.name)
            af.sample_rate = rate
            pts = round((t - data.shape[1] / rate + i0 / rate - self.base) * rate)
            af.pts = max(pts, self.a_next)
            af.time_base = Fraction(1, rate)
            self.a_next = af.pts + chunk.shape[1]
            for p in aout.encode(af):
                self.out.mux(p)
