"""Video: stylize a clip frame by frame, kept coherent in time with optical flow.

    for each frame I_t (decoded, stylized and encoded as it goes; memory = a few frames):
        w   = flow(I_t -> I_{t-1})                   DIS optical flow (Kroeger et al., 2016)
        M   = forward-backward consistent(w) and not a motion boundary and inside the frame
        S_t = stylize(I_t)                           the fast (AdaIN) method, or optimize started
                                                     from M * warp(O_{t-1}, w) + (1 - M) * I_t
        O_t = S_t + beta * feather(M) * (warp(O_{t-1}, w) - S_t)
        O_t = restore_detail(O_t, S_t)              the blend's fine texture gets S_t's contrast back

The blend is a recursive filter along motion trajectories: where the previous output can be
followed (M = 1) the new frame leans towards it by ``beta``, so brush strokes stay on the
objects instead of boiling; where it cannot (occlusions, new content at the border, cuts) the
frame is its own stylization; ``feather`` ramps the weight up over a few pixels inside the mask,
so its blocky edges leave no seam. Averaging two paintings whose strokes do not line up fades the
strokes; :mod:`.detail` gives the blend's detail band back the local contrast of the frame's own
stylization (a variance-preserving blend, Heitz and Neyret 2018). The occlusion test is the
forward-backward check of Sundaram et al. (2010) as used for video style transfer by Ruder et
al. (2016).

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

The package: :mod:`.options` (options, result, error), :mod:`.media` (PyAV/OpenCV, probing),
:mod:`.flow` (flow, warp, blend, warping error), :mod:`.detail` (the blend's detail contrast),
:mod:`.frames` (one frame through the clip's stylizer), :mod:`.transcode` (the PyAV transcoder)
and, here, :func:`stylize_video`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_write
from ..errors import StyleTransferError
from .detail import restore_detail
from .flow import FlowEstimator, TemporalBlender, consistent_mask, feather, warp, warping_error
from .frames import FramePipeline, FrameStylizer
from .media import VIDEO_FORMATS, VideoInfo, check_video_output, import_media, open_input, probe_video
from .options import (
    DEFAULT_BLEND, DEFAULT_OPTIMIZE_BLEND, DEFAULT_WARM_STEPS, METHODS, ProgressCallback, VideoError, VideoOptions,
    VideoResult, parse_time,
)
from .transcode import Transcoder

__all__ = [
    "DEFAULT_BLEND", "DEFAULT_OPTIMIZE_BLEND", "DEFAULT_WARM_STEPS", "METHODS", "VIDEO_FORMATS", "FlowEstimator",
    "FramePipeline", "FrameStylizer", "ProgressCallback", "TemporalBlender", "Transcoder", "VideoError", "VideoInfo",
    "VideoOptions", "VideoResult", "check_video_output", "consistent_mask", "feather", "parse_time", "probe_video",
    "restore_detail", "stylize_video", "warp", "warping_error",
]


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
        styles: style images (paths, PIL images, arrays or tensors; see ``painterly.as_tensor``).
        output: ``.mp4``, ``.m4v``, ``.mov`` or ``.mkv`` (H.264 + AAC); written atomically.
        options: see :class:`VideoOptions`.
        overwrite: replace an existing ``output`` (an input is never overwritten).
        callback: ``callback(frames_done, frames_total_or_None)`` after every frame; may raise
            to cancel (nothing is written).
        encoder, decoder: networks to use instead of the pretrained ones (tests use tiny ones).
        stylizer: a :class:`~painterly.stylizers.fast.FastStylizer` to run the fast method
            with (a server's, built once); default: one of ``options.fast.model``.

    Returns:
        :class:`VideoResult`.

    Raises:
        StyleTransferError: bad input (not a video, no video stream, no frames, undecodable),
            bad options, output exists / is an input / folder not writable; all before any work
            when they can be known.
    """
    from ..image import as_tensor

    av, _ = import_media()
    opts = options or VideoOptions()
    opts.validate()
    style_list = list(styles)
    if not style_list:
        raise StyleTransferError("at least one style image is needed")
    in_path = Path(input)
    inputs = [in_path] + [s for s in style_list if isinstance(s, (str, Path))]
    out_path = check_video_output(output, overwrite, inputs)
    frame_stylizer = FrameStylizer([as_tensor(s) for s in style_list], opts, encoder, decoder, stylizer)
    t_begin = time.perf_counter()

    container = open_input(av, in_path)
    with container, contextlib.ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_write(out_path, suffix=".part"))
        except OSError as exc:
            raise VideoError(f"{out_path}: cannot write in its folder ({exc.strerror})") from None
        blender = TemporalBlender(opts.effective_blend(), detail=opts.detail) if opts.temporal else None
        transcoder = Transcoder(container, in_path, opts)
        result = transcoder.run(tmp, VIDEO_FORMATS[out_path.suffix.lower()], FramePipeline(frame_stylizer, blender),
                                callback)
    return dataclasses.replace(result, path=out_path, seconds=time.perf_counter() - t_begin)
