"""``painterly video IN STYLE [STYLE ...] -o OUT.mp4``: the command-line side of :mod:`painterly.video`.

Turns the arguments into :class:`~painterly.video.VideoOptions` (the library never sees the
Namespace) and drives a tqdm bar (frames/s and time left) from the library's callback. Its flags
are generated: :class:`VideoOptions`' own, and those of the stylize command (the per-frame
``OptimizeOptions``/``FastOptions``), with the same checks.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..argtypes import int_at_least, number, positive_int
from ..clioptions import FlagSpec, OPTIMIZE, config_values, dataclass_flags, stylize_flags
from ..errors import CLIError, StyleTransferError
from ..image import check_input_files
from .common import add_stylize_flags, method_options, validate_flags

VIDEO_EPILOG = """\
examples:
  painterly video clip.mp4 starry.jpg -o out.mp4 --model model.safetensors --size 512
  painterly video clip.mov a.jpg b.jpg --style-weights 0.7 0.3 -o out.mp4 --model M
  painterly video clip.mp4 starry.jpg -o part.mp4 --model M --start 1:05 --duration 10
  painterly video clip.mp4 starry.jpg -o flicker.mp4 --model M --no-temporal   # per-frame, to compare
  painterly video short.mp4 starry.jpg -o out.mp4 --method optimize --size 256 --warm-steps 20

Frames are decoded, stylized and encoded as they go (memory stays at a few frames). Output: H.264
+ AAC with the source's frame timing, rotation and audio, written to a temporary file and renamed
at the end. Temporal coherence (default on): DIS optical flow warps the previous stylized frame
onto the new one and blends it in where the flow passes a forward-backward check (--blend).
With --method optimize every frame after the first instead starts from that warped previous
result (the frame itself where the flow fails; Ruder et al. 2016) and gets only --warm-steps
steps at the output's size, while the first frame gets the full schedule (--steps); no blend by
default, which would wash out the optimised texture.
"""


def _time(text: str) -> float:
    """``--start T``: seconds or [HH:]MM:SS."""
    from ..video import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> float:
    """``--duration T``: as ``--start``, and more than 0."""
    seconds = _time(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return seconds


SKIP = {"fast", "optimize"}  # the per-frame options: the stylize command's flags
# the flag groups of VideoOptions' fields (method: at the top)
GROUPS = {"size": "clip", "start": "clip", "duration": "clip", "audio": "clip", "crf": "clip",
          "temporal": "temporal coherence", "blend": "temporal coherence", "detail": "temporal coherence",
          "warm_steps": "temporal coherence"}


def video_flags() -> list[FlagSpec]:
    """The flags of :class:`~painterly.video.VideoOptions`' own fields (generated)."""
    from ..video import DEFAULT_BLEND, DEFAULT_OPTIMIZE_BLEND, DEFAULT_WARM_STEPS, METHODS, VideoOptions

    overrides = {
        "method": dict(choices=METHODS, default_text=False,
                       help="fast: AdaIN, one pass per frame (default); optimize: Gatys per frame, for short clips"),
        "size": dict(type=int_at_least(16), metavar="PX", help="longest side of the output (default: the source's)"),
        "start": dict(type=_time, metavar="T", default_text=False,
                      help="skip T at the start (seconds or [HH:]MM:SS)"),
        "duration": dict(type=_duration, metavar="T", help="keep only T after --start"),
        "audio": dict(help="keep the audio stream, re-encoded to AAC (--no-audio: drop it)"),
        "crf": dict(type=int_at_least(0), default_text=False,
                    help="H.264 quality: 0 lossless, 18 visually lossless (default), 23 smaller"),
        "temporal": dict(help="keep consecutive frames coherent with optical flow (--no-temporal: every frame "
                              "stylized on its own; flickers, for comparison)"),
        "blend": dict(type=number(0, 0.99), metavar="B",
                      help=f"how much each frame follows the previous stylized frame where the optical flow "
                           f"is reliable (0 = no blend; default {DEFAULT_BLEND:g} for fast, "
                           f"{DEFAULT_OPTIMIZE_BLEND:g} for optimize, whose warm start keeps frames coherent)"),
        "detail": dict(help="after the blend, give the fine texture back the contrast of the frame's own "
                            "stylization (--no-detail: the plain blend, whose averaged strokes fade)"),
        "warm_steps": dict(type=positive_int, method=OPTIMIZE, default_text=False,
                           help="optimize: steps of every frame after the first, started from the previous "
                                f"stylized frame warped by the optical flow (default {DEFAULT_WARM_STEPS}; with "
                                "--no-temporal every frame gets the full --steps schedule from the photo)"),
    }
    return dataclass_flags(VideoOptions, overrides, SKIP)


def add_parser(sub: Any) -> None:
    """Register ``video`` on the ``painterly`` command's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("video", help="stylize a video clip (flicker-free)", formatter_class=fmt,
                       epilog=VIDEO_EPILOG, description="Stylize the video IN with one or more STYLE images "
                                                        "and write OUT (.mp4, .m4v, .mov or .mkv).")
    p.add_argument("input", metavar="IN", help="a video file (any container/codec FFmpeg reads)")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are blended")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output video (.mp4, .m4v, .mov, .mkv); never overwritten without --force")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists (never IN)")
    groups = {name: p.add_argument_group(name) for name in ("clip", "temporal coherence")}
    for spec in video_flags():
        spec.add_to(groups[GROUPS[spec.name]] if spec.name in GROUPS else p)
    add_stylize_flags(p, "fast: spatial mask image (white = this style), once per STYLE, resized to the frames")
    g = p.add_argument_group("general")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_video)


def _options(args: argparse.Namespace):
    """:class:`VideoOptions` from the flags, with the per-frame options of its method."""
    from ..image import load_image
    from ..video import VideoOptions

    specs = [*stylize_flags(), *video_flags()]
    n = len(args.styles)
    method, frame_options = method_options(args, specs, getattr(args, "method", VideoOptions.method), n)
    if method == "fast":
        if args.mask and len(args.mask) != n:
            raise CLIError(f"--mask: give one mask per style image ({n}), got {len(args.mask)}")
        if frame_options.model:
            from ..stylizers.fast_model import check_model_arg

            try:
                check_model_arg(frame_options.model)
            except StyleTransferError as exc:
                raise CLIError(str(exc)) from None
        if args.mask:
            check_input_files(args.mask, "--mask")
            frame_options.masks = [load_image(m).rgb.mean(dim=1, keepdim=True) for m in args.mask]
    clip = config_values(args, VideoOptions, SKIP | {"method"})
    options = VideoOptions(method=method, **{method: frame_options}, **clip)
    validate_flags(options.validate, specs)
    return options


def cmd_video(args: argparse.Namespace) -> int:
    """Stylize the clip with a frames bar; say what was written and how fast."""
    from ..video import check_video_output, stylize_video

    check_input_files(args.styles, "style")
    options = _options(args)
    # everything about OUT is checked before the (slow) work, and again by the library
    check_video_output(args.output, overwrite=args.force, inputs=[args.input, *args.styles, *(args.mask or [])])
    bar: dict[str, Any] = {}

    def progress(done: int, total: int | None) -> None:
        if args.quiet:
            return
        if "bar" not in bar:
            from tqdm import tqdm

            bar["bar"] = tqdm(total=total, desc="video", unit="frame", dynamic_ncols=True, file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)

    t0 = time.perf_counter()
    try:
        result = stylize_video(args.input, args.styles, args.output, options, overwrite=args.force,
                               callback=progress)
    finally:
        if "bar" in bar:
            bar["bar"].close()
    elapsed = time.perf_counter() - t0
    print(f"wrote {result.path} ({result.width}x{result.height}, {result.frames} frames at {result.fps:.3g} fps"
          f"{', with audio' if result.audio else ''}, {options.method}"
          f"{', temporal' if options.temporal else ', per-frame'}) in {elapsed:.1f} s "
          f"({result.frames / max(elapsed, 1e-9):.2f} frames/s)")
    return 0
