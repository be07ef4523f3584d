"""``styletransfer video IN STYLE [STYLE ...] -o OUT.mp4``: the command-line side of :mod:`styletransfer.video`.

Turns the arguments into :class:`~styletransfer.video.VideoOptions` (the library never sees the
Namespace) and drives a tqdm bar (frames/s and time left) from the library's callback.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .argtypes import int_at_least, number, positive_int
from .errors import StyleTransferError

VIDEO_EPILOG = """\
examples:
  styletransfer video clip.mp4 starry.jpg -o out.mp4 --model model.safetensors --size 512
  styletransfer video clip.mov a.jpg b.jpg --style-weights 0.7 0.3 -o out.mp4 --model M
  styletransfer video clip.mp4 starry.jpg -o part.mp4 --model M --start 1:05 --duration 10
  styletransfer video clip.mp4 starry.jpg -o flicker.mp4 --model M --no-temporal   # per-frame, to compare
  styletransfer video short.mp4 starry.jpg -o out.mp4 --method optimize --size 256 --warm-steps 20

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
    from .video import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> float:
    seconds = _time(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return seconds


def add_video_parser(sub: Any) -> None:
    """Register ``video`` on the ``styletransfer`` command's subparsers."""
    from .video import DEFAULT_BLEND, DEFAULT_OPTIMIZE_BLEND, DEFAULT_WARM_STEPS

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("video", help="stylize a video clip (flicker-free)", formatter_class=fmt,
                       epilog=VIDEO_EPILOG, description="Stylize the video IN with one or more STYLE images "
                                                        "and write OUT (.mp4, .m4v, .mov or .mkv).")
    p.add_argument("input", metavar="IN", help="a video file (any container/codec FFmpeg reads)")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are blended")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output video (.mp4, .m4v, .mov, .mkv); never overwritten without --force")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists (never IN)")
    p.add_argument("--method", choices=("fast", "optimize"), default="fast",
                   help="fast: AdaIN, one pass per frame (default); optimize: Gatys per frame, for short clips")
    g = p.add_argument_group("clip")
    g.add_argument("--size", type=int_at_least(16), metavar="PX", help="longest side of the output (default: the source's)")
    g.add_argument("--start", type=_time, default=0.0, metavar="T", help="skip T at the start (seconds or [HH:]MM:SS)")
    g.add_argument("--duration", type=_duration, metavar="T", help="keep only T after --start")
    g.add_argument("--no-audio", dest="audio", action="store_false", help="drop the audio stream")
    g.add_argument("--crf", type=int_at_least(0), default=18, metavar="N",
                   help="H.264 quality: 0 lossless, 18 visually lossless (default), 23 smaller")
    g = p.add_argument_group("temporal coherence")
    g.add_argument("--no-temporal", dest="temporal", action="store_false",
                   help="stylize every frame on its own (flickers; for comparison)")
    g.add_argument("--blend", type=number(0, 0.99), metavar="B",
                   help=f"how much each frame follows the previous stylized frame where the optical flow "
                        f"is reliable (0 = no blend; default {DEFAULT_BLEND:g} for fast, "
                        f"{DEFAULT_OPTIMIZE_BLEND:g} for optimize, whose warm start keeps frames coherent)")
    g = p.add_argument_group("style")
    g.add_argument("--style-weights", type=number(0), nargs="+", metavar="W",
                   help="blend weights, one per STYLE (normalised to sum 1; default equal)")
    g.add_argument("--preserve-color", choices=("none", "luminance", "histogram"), default="none",
                   help="keep the video's colours (histogram: styles recoloured to the first frame)")
    g.add_argument("--alpha", type=number(0, 1), default=1.0, help="fast: 0 = video, 1 = full style (default 1)")
    g.add_argument("--mask", action="append", metavar="FILE",
                   help="fast: spatial mask image (white = this style), once per STYLE, resized to the frames")
    g.add_argument("--model", metavar="FILE", help="fast: a model file, or a built-in model: slim (the default) or large")
    g.add_argument("--tile", type=positive_int, metavar="PX", help="fast: tile size for big frames (default automatic)")
    g.add_argument("--levels", nargs="+", metavar="LEVEL", choices=("relu4_1", "relu3_1", "relu2_1", "relu1_1"),
                   help="fast: encoder levels to run, deepest first (default: every level of the model; "
                        "--levels relu4_1 is about twice as quick, softer)")
    g.add_argument("--transform", choices=("adain", "wct", "mixed"), default="adain",
                   help="fast: adain (default), wct (stronger, wilder textures) or mixed (adain deep, wct shallow)")
    g.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="fast: run the networks in torch (default) or onnxruntime (CPU)")
    g.add_argument("--steps", type=positive_int, metavar="N", help="optimize: steps of the coarsest scale of the first frame (of every frame with --no-temporal)")
    g.add_argument("--warm-steps", type=positive_int, metavar="N",
                   help="optimize: steps of every frame after the first, started from the previous stylized "
                        f"frame warped by the optical flow (default {DEFAULT_WARM_STEPS}; with --no-temporal "
                        "every frame gets the full --steps schedule from the photo)")
    g.add_argument("--style-weight", type=number(0), metavar="W", help="optimize: style weight (default 20)")
    g = p.add_argument_group("general")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_video)


def _options(args: argparse.Namespace):
    from .errors import CLIError
    from .image import check_input_files as _check_files
    from .image import load_image
    from .stylizers.optimize import OptimizeOptions
    from .video import VideoOptions

    n = len(args.styles)
    if args.style_weights is not None and len(args.style_weights) != n:
        raise CLIError(f"--style-weights: got {len(args.style_weights)} weight(s) for {n} style image(s)")
    if args.style_weights is not None and sum(args.style_weights) <= 0:
        raise CLIError("--style-weights: the weights must not all be 0")
    preserve = None if args.preserve_color == "none" else args.preserve_color
    if args.method == "optimize":
        for flag, value in (("--mask", args.mask), ("--model", args.model), ("--tile", args.tile),
                            ("--levels", args.levels), ("--transform", args.transform != "adain"),
                            ("--backend", args.backend != "torch")):
            if value:
                raise CLIError(f"{flag} only applies to --method fast")
        if args.alpha != 1.0:
            raise CLIError("--alpha only applies to --method fast")
        kw: dict[str, Any] = {}
        if args.steps is not None:
            kw["steps"] = args.steps
        if args.style_weight is not None:
            kw["style_weight"] = args.style_weight
        optimize = OptimizeOptions(style_weights=args.style_weights, preserve_color=preserve, device=args.device, **kw)
        warm = {} if args.warm_steps is None else {"warm_steps": args.warm_steps}
        return VideoOptions(method="optimize", optimize=optimize, size=args.size, start=args.start,
                            duration=args.duration, temporal=args.temporal, blend=args.blend,
                            audio=args.audio, crf=args.crf, **warm)
    for flag, value in (("--steps", args.steps), ("--style-weight", args.style_weight),
                        ("--warm-steps", args.warm_steps)):
        if value is not None:
            raise CLIError(f"{flag} only applies to --method optimize")
    if args.mask and len(args.mask) != n:
        raise CLIError(f"--mask: give one mask per style image ({n}), got {len(args.mask)}")
    if args.model:
        from .stylizers.fast_model import check_model_arg

        try:
            check_model_arg(args.model)
        except StyleTransferError as exc:
            raise CLIError(str(exc)) from None
    if args.mask:
        _check_files(args.mask, "--mask")
    from .stylizers import fast

    masks = [load_image(m).rgb.mean(dim=1, keepdim=True) for m in args.mask] if args.mask else None
    fopts = fast.FastOptions(alpha=args.alpha, style_weights=args.style_weights, masks=masks,
                             preserve_color=preserve, tile=args.tile, device=args.device, model=args.model,
                             levels=args.levels, transform=args.transform, backend=args.backend)
    return VideoOptions(method="fast", fast=fopts, size=args.size, start=args.start, duration=args.duration,
                        temporal=args.temporal, blend=args.blend, audio=args.audio, crf=args.crf)


def cmd_video(args: argparse.Namespace) -> int:
    from .errors import CLIError
    from .image import check_input_files as _check_files
    from .video import check_video_output, stylize_video

    if args.crf > 51:
        raise CLIError(f"argument --crf: must be <= 51, got {args.crf}")
    _check_files(args.styles, "style")
    options = _options(args)
    options.validate()
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
