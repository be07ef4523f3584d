"""Command line: ``styletransfer`` (demo), ``styletransfer stylize``, ``styletransfer train``
(and ``styletransfer serve`` when the web part is installed).

Every user error ends as one line ``styletransfer: error: ...`` on stderr and a non-zero exit
code (2 for bad command-line usage, 1 for bad input files or values, 130 for Ctrl-C); never a
traceback (set ``STYLETRANSFER_DEBUG=1`` to see one for an unexpected error).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .argtypes import non_negative_int, number, positive_int

PROG = "styletransfer"
DEMO_NAME = "styletransfer-demo"
DEMO_SIZE_ENV = "STYLETRANSFER_DEMO_SIZE"  # the demo's output size (tests use a tiny one)


class CLIError(Exception):
    """Bad command-line usage (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and raise instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see: {self.prog} --help)")


# ----- value parsers -----------------------------------------------------------------------------

def _steps(text: str) -> int | list[int]:
    """``300`` (budget of the coarsest scale) or ``300,80,20`` (every scale, coarse to fine)."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,... (whole numbers), got {text!r}") from None
    if any(p < 0 for p in parts) or sum(parts) < 1:
        raise argparse.ArgumentTypeError(f"step counts must be >= 0 and not all 0, got {text!r}")
    return parts[0] if len(parts) == 1 else parts


def _layers(text: str) -> dict[str, float]:
    """``relu4_2`` or ``relu1_1:1,relu2_1:0.5`` -> {layer: weight}."""
    from .encoders import LAYER_NAMES

    out: dict[str, float] = {}
    for item in text.split(","):
        name, _, weight = item.strip().partition(":")
        if name not in LAYER_NAMES:
            raise argparse.ArgumentTypeError(f"unknown VGG19 layer {name!r} (use relu1_1 ... relu5_4)")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight {weight!r} in {text!r}") from None
        if not (w >= 0 and math.isfinite(w)):
            raise argparse.ArgumentTypeError(f"layer weights must be >= 0, got {weight!r}")
        out[name] = w
    return out


# ----- parser ------------------------------------------------------------------------------------

_FMT = argparse.RawDescriptionHelpFormatter

DESCRIPTION = """\
Neural style transfer: repaint a photo in the style of one or more paintings.

Run without arguments to stylize a built-in photo with a built-in style (a quick demo).

commands:
  stylize CONTENT STYLE [STYLE ...] -o OUT   stylize an image (see: styletransfer stylize --help)
  demo                                       the built-in demo (what no arguments does)
  train --content DIR --style DIR --out DIR  train a feed-forward (AdaIN) decoder
"""

STYLIZE_EPILOG = """\
examples:
  styletransfer stylize photo.jpg starry.jpg -o out.png
  styletransfer stylize photo.jpg a.jpg b.jpg --style-weights 0.7 0.3 -o blend.png
  styletransfer stylize photo.jpg starry.jpg --preserve-color luminance --size 768 -o out.png
  styletransfer stylize photo.jpg starry.jpg --method fast --alpha 0.8 -o quick.png

speed: the optimisation works coarse-to-fine (small image first, each scale twice as large);
--steps sets the coarsest scale's step budget and every finer scale gets --step-decay times fewer.
"""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .stylizers.optimize import OptimizeOptions

    d = OptimizeOptions()
    parser = _Parser(prog=PROG, description=DESCRIPTION, formatter_class=_FMT)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # -- stylize --
    p = sub.add_parser("stylize", help="stylize an image", formatter_class=_FMT, epilog=STYLIZE_EPILOG,
                       description="Stylize CONTENT with one or more STYLE images and write OUT.")
    p.add_argument("content", metavar="CONTENT",
                   help="the photo to repaint, or a folder of photos (then OUT is a folder too)")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are blended")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output image (.png, .jpg, .webp, .tif, .bmp), or a folder when CONTENT is one "
                        "(one PNG per photo, same name); never overwritten without --force")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists (never an input)")
    p.add_argument("--method", choices=("optimize", "fast", "auto"), default="optimize",
                   help="optimize: Gatys optimisation, best quality (default); fast: AdaIN feed-forward, "
                        "one pass; auto: fast if its built-in model is installed, else optimize")
    g = p.add_argument_group("size")
    g.add_argument("--size", type=positive_int, default=512, metavar="PX",
                   help="longest side of the output (default 512)")
    g.add_argument("--max-pixels", type=positive_int, metavar="N",
                   help="cap the output at N pixels (keeps the aspect ratio)")
    g.add_argument("--max-input-pixels", type=positive_int, default=80_000_000, metavar="N",
                   help="refuse input images larger than N pixels (decompression-bomb guard; default 80M)")
    g = p.add_argument_group("style")
    g.add_argument("--style-weights", type=number(0), nargs="+", metavar="W",
                   help="blend weights, one per STYLE (normalised to sum 1; default equal)")
    g.add_argument("--preserve-color", choices=("none", "luminance", "histogram"), default="none",
                   help="keep the photo's colours: luminance = transfer brightness only, exact photo colours; "
                        "histogram = recolour the style to the photo's palette first (default none)")
    g = p.add_argument_group("optimisation (--method optimize)")
    g.add_argument("--steps", type=_steps, default=d.steps, metavar="N[,N...]",
                   help=f"steps of the coarsest scale, each finer scale 1/{d.step_decay:g} as many (min "
                        f"{d.min_steps}); or one count per scale, coarse to fine, e.g. 300,80,20 (default {d.steps})")
    g.add_argument("--step-decay", type=number(lo=1.0), default=d.step_decay, metavar="R",
                   help=f"ratio of the step counts of successive scales (default {d.step_decay:g}; "
                        "4 = equal time per scale)")
    g.add_argument("--max-work", type=number(lo=0.0, lo_open=True), default=d.max_work, metavar="MPX",
                   help=f"cap on the schedule's total work in megapixel-steps (steps x pixels summed over "
                        f"the scales; ~15-20 s each on 2 CPU cores): big outputs get fewer steps per scale "
                        f"(default {d.max_work:g})")
    g.add_argument("--no-max-work", dest="max_work", action="store_const", const=None,
                   help="no cap: every output size gets the full --steps schedule")
    g.add_argument("--scales", type=positive_int, metavar="N",
                   help=f"number of scales (default: halve until the longest side is ~{d.coarse_size} px)")
    g.add_argument("--coarse-size", type=positive_int, default=d.coarse_size, metavar="PX",
                   help=f"halve the output while its longest side stays >= PX to get the coarsest scale "
                        f"(default {d.coarse_size}; smaller = faster but loses small details)")
    g.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d.optimizer, help="default lbfgs")
    g.add_argument("--lr", type=number(0, lo_open=True), help="step size (default 1.0 for lbfgs, 0.02 for adam)")
    g.add_argument("--init", choices=("content", "noise", "style"), default=d.init,
                   help="start image (default content)")
    g.add_argument("--content-weight", type=number(0), default=d.content_weight, metavar="W",
                   help=f"default {d.content_weight:g}")
    g.add_argument("--style-weight", type=number(0), default=d.style_weight, metavar="W",
                   help=f"higher = more style (default {d.style_weight:g})")
    g.add_argument("--tv-weight", type=number(0), default=d.tv_weight, metavar="W",
                   help=f"smoothness (total variation) weight (default {d.tv_weight:g})")
    g.add_argument("--content-layers", type=_layers, metavar="L[:W],...",
                   help="content layers and weights (default relu4_2)")
    g.add_argument("--style-layers", type=_layers, metavar="L[:W],...",
                   help="style layers and weights (default relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)")
    g.add_argument("--style-scale", type=number(0, lo_open=True), default=d.style_scale, metavar="F",
                   help="style image area relative to the output: < 1 = smaller brush strokes (default 1)")
    g.add_argument("--pooling", choices=("max", "avg"), default=d.pooling, help="VGG19 pooling (default max)")
    g.add_argument("--early-stop", type=number(0), default=d.early_stop_tol, metavar="TOL",
                   help=f"stop a scale when the loss improves by less than TOL (relative) over "
                        f"{d.early_stop_patience} steps; 0 = off (default {d.early_stop_tol:g})")
    g.add_argument("--snapshot-every", type=non_negative_int, default=0, metavar="N",
                   help="save the image every N steps into --snapshot-dir")
    g.add_argument("--snapshot-dir", metavar="DIR", help="folder for snapshots (default: OUT's name + _snapshots)")
    g = p.add_argument_group("fast mode (--method fast)")
    g.add_argument("--alpha", type=number(0, 1), default=1.0, help="0 = photo, 1 = full style (default 1)")
    g.add_argument("--mask", action="append", metavar="FILE",
                   help="spatial mask (white = this style), given once per STYLE, in the same order")
    g.add_argument("--model", metavar="FILE", help="decoder model.safetensors (default: the built-in model)")
    g.add_argument("--tile", type=positive_int, metavar="PX", help="tile size for big images (default automatic)")
    g = p.add_argument_group("general")
    g.add_argument("--weights", metavar="FILE",
                   help="torchvision vgg19 state dict (.pth/.safetensors) instead of the built-in Caffe VGG19")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("--seed", type=int, help="random seed (for reproducible noise init)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_stylize)

    # -- demo --
    p = sub.add_parser("demo", help="stylize a built-in photo with a built-in style", formatter_class=_FMT,
                       description="Stylize a scikit-image photo with the built-in 'swirls' painting. "
                                   "Writes styletransfer-demo.png (or -1, -2... if taken) in the current folder.")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: a fresh styletransfer-demo*.png)")
    p.add_argument("--photo", default="astronaut", choices=_demo_photos(), help="content photo (default astronaut)")
    p.add_argument("--size", type=positive_int, metavar="PX",
                   help=f"longest side of the output (default 512, or ${DEMO_SIZE_ENV})")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    # -- train --
    _add_train_parser(sub)
    from .export import add_export_parser  # -- export (ONNX for apps) --
    add_export_parser(sub)
    from .video_cli import add_video_parser  # -- video --
    add_video_parser(sub)

    # -- serve (owned by the web part) --
    try:
        from . import web
    except ImportError:
        web = None  # type: ignore[assignment]
    if web is not None and hasattr(web, "add_serve_parser"):
        web.add_serve_parser(sub)
    return parser


def _demo_photos() -> tuple[str, ...]:
    from .demo import CONTENT_PHOTOS

    return CONTENT_PHOTOS


_TRAIN_HELP = {
    "steps": "training steps", "batch_size": "images per batch", "crop": "random crop size (multiple of 8)",
    "lr": "decoder learning rate", "lr_decay": "lr_t = lr / (1 + decay * t)",
    "content_weight": "content loss weight", "style_weight": "style loss weight",
    "style_loss": "meanstd (AdaIN) or gram", "tv_weight": "total variation weight",
    "decoder_width": "decoder channel multiplier", "gan_weight": "adversarial loss weight (> 0 turns it on)",
    "gan_loss": "hinge or nonsat", "disc_lr": "discriminator learning rate", "seed": "random seed",
    "device": "auto, cpu, cuda or mps", "amp": "bf16/fp16 autocast where it pays off",
    "channels_last": "channels-last memory format", "checkpoint_every": "steps between checkpoints",
    "sample_every": "steps between sample images", "log_every": "steps between metrics rows",
    "max_minutes": "stop (with a checkpoint) after this many minutes",
    "level": "encoder layer the decoder inverts: relu1_1, relu2_1, relu3_1 or relu4_1",
    "init": "decoder init: kaiming (recommended) or default (PyTorch's)",
    "warmup_steps": "reconstruction-only steps before the AdaIN losses (= --steps: a WCT decoder)",
    "pixel_weight": "weight of the reconstruction's pixel L1 term",
    "identity_weight": "identity (reconstruction) loss weight in the AdaIN phase (> 0 turns it on)",
}
_TRAIN_SKIP = {"content_dir", "style_dir", "out_dir", "layer_scales"}


def _add_train_parser(sub: Any) -> None:
    from .training import TrainConfig

    p = sub.add_parser("train", help="train a feed-forward (AdaIN) decoder", formatter_class=_FMT,
                       description="Train the AdaIN decoder of --method fast. Writes checkpoint.safetensors, "
                                   "samples and metrics.csv into --out; --resume continues a run.")
    p.add_argument("--content", required=True, metavar="DIR", help="folder of content photos")
    p.add_argument("--style", required=True, metavar="DIR", help="folder of style images")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, samples, metrics)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.safetensors")
    defaults = TrainConfig("", "", "")
    for f in dataclasses.fields(TrainConfig):
        if f.name in _TRAIN_SKIP:
            continue
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        help_text = _TRAIN_HELP.get(f.name, f.name.replace("_", " "))
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                           help=f"{help_text} (default {'on' if default else 'off'})")
        elif f.name == "max_minutes":
            p.add_argument(flag, type=number(0, lo_open=True), default=None, metavar="MIN", help=help_text)
        elif isinstance(default, int):
            p.add_argument(flag, type=int, default=default, metavar="N", help=f"{help_text} (default {default})")
        elif isinstance(default, float):
            p.add_argument(flag, type=number(), default=default, metavar="X", help=f"{help_text} (default {default:g})")
        else:
            p.add_argument(flag, default=default, help=f"{help_text} (default {default})")
    p.set_defaults(func=cmd_train)


# ----- commands ----------------------------------------------------------------------------------

def _progress(quiet: bool, desc: str):
    """A tqdm bar driven by the stylizer's callback(step, total, loss); returns (callback, close)."""
    if quiet:
        return None, lambda: None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def callback(step: int, total: int, loss: float) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr)
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return callback, close


def _fresh_demo_path() -> Path:
    path = Path(f"{DEMO_NAME}.png")
    i = 1
    while path.exists():
        path = Path(f"{DEMO_NAME}-{i}.png")
        i += 1
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DEMO_STYLE_WEIGHT, content_photo, swirl_style
    from .errors import StyleTransferError
    from .image import check_output_path, fit_size, resize, save_image
    from .stylizers.optimize import OptimizeOptions, stylize_optimize

    size = args.size
    if size is None:
        env = os.environ.get(DEMO_SIZE_ENV)
        try:
            size = int(env) if env else 512
        except ValueError:
            raise StyleTransferError(f"${DEMO_SIZE_ENV} must be a whole number, got {env!r}") from None
        if size < 16:
            raise StyleTransferError(f"${DEMO_SIZE_ENV} must be >= 16, got {size}")
    out = Path(args.output) if args.output else _fresh_demo_path()
    check_output_path(out, overwrite=False)
    t0 = time.perf_counter()
    content = content_photo(args.photo)
    content = resize(content, fit_size(*content.shape[-2:], size=size))
    style = swirl_style(512)
    callback, close = _progress(args.quiet, "demo")
    try:
        options = OptimizeOptions(device=args.device, seed=0, style_weight=DEMO_STYLE_WEIGHT)
        result = stylize_optimize(content, [style], options, callback=callback)
    finally:
        close()
    save_image(result, out)
    elapsed = time.perf_counter() - t0
    h, w = result.shape[-2:]
    print(f"wrote {out.resolve()} ({w}x{h}, scikit-image '{args.photo}' in the built-in 'swirls' style) "
          f"in {elapsed:.1f} s")
    return 0


def _check_files(paths: Sequence[str], what: str) -> None:
    from .errors import ImageError

    for p in paths:
        path = Path(p)
        if not path.exists():
            raise ImageError(f"{what} {p}: no such file")
        if path.is_dir():
            raise ImageError(f"{what} {p}: is a folder, not an image")


def cmd_stylize(args: argparse.Namespace) -> int:
    from . import fast_available
    from .errors import StyleTransferError
    from .image import load_image

    n = len(args.styles)
    if not Path(args.content).is_dir():  # a folder of photos is a batch
        _check_files([args.content], "content")
    _check_files(args.styles, "style")
    if args.mask:
        _check_files(args.mask, "--mask")
    if args.style_weights is not None and len(args.style_weights) != n:
        raise CLIError(f"--style-weights: got {len(args.style_weights)} weight(s) for {n} style image(s)")
    if args.style_weights is not None and sum(args.style_weights) <= 0:
        raise CLIError("--style-weights: the weights must not all be 0")
    if args.weights and not Path(args.weights).is_file():
        raise StyleTransferError(f"--weights {args.weights}: no such file")
    if args.model and not Path(args.model).is_file():
        raise StyleTransferError(f"--model {args.model}: no such file")
    method = args.method
    if method == "auto":
        method = "fast" if (args.model or fast_available()) else "optimize"
    if method == "optimize":
        for flag, value in (("--mask", args.mask), ("--model", args.model), ("--tile", args.tile)):
            if value:
                raise CLIError(f"{flag} only applies to --method fast")
        if args.alpha != 1.0:
            raise CLIError("--alpha only applies to --method fast")
    elif args.mask and len(args.mask) != n:
        raise CLIError(f"--mask: give one mask per style image ({n}), got {len(args.mask)}")
    jobs = _stylize_jobs(args)
    t_all = time.perf_counter()
    styles = [load_image(s, max_pixels=args.max_input_pixels).rgb for s in args.styles]
    masks = [load_image(m, max_pixels=args.max_input_pixels).rgb.mean(dim=1, keepdim=True)
             for m in args.mask] if args.mask else None
    failed = 0
    for content_path, out in jobs:
        try:
            _stylize_one(args, method, content_path, out, styles, masks, quiet=args.quiet or len(jobs) > 1)
        except StyleTransferError as exc:
            if len(jobs) == 1:
                raise
            failed += 1
            _error(str(exc), 1)  # a batch goes on past a bad photo, and says so
    if len(jobs) > 1:
        print(f"{len(jobs) - failed} of {len(jobs)} photos stylized into {args.output} "
              f"in {time.perf_counter() - t_all:.1f} s" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _stylize_jobs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """(content, output) pairs: one for a photo; one per image for a folder of photos."""
    from .errors import StyleTransferError
    from .image import SAVE_FORMATS, check_output_path, list_images

    content = Path(args.content)
    inputs = [args.content, *args.styles, *(args.mask or [])]
    if not content.is_dir():
        return [(content, check_output_path(args.output, overwrite=args.force, inputs=inputs))]
    out_dir = Path(args.output)
    if out_dir.suffix.lower() in SAVE_FORMATS or (out_dir.exists() and not out_dir.is_dir()):
        raise StyleTransferError(f"-o {args.output}: CONTENT is a folder, so OUT must be a folder too")
    if out_dir.resolve() == content.resolve():
        raise StyleTransferError(f"-o {args.output}: write into another folder than the photos' own")
    photos = list_images(content)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(photo, out_dir / f"{photo.stem}.png") for photo in photos]
    # check every output before the first (slow) stylization, so nothing fails half-way on a name
    for photo, out in jobs:
        check_output_path(out, overwrite=args.force, inputs=[photo, *inputs[1:]])
    return jobs


def _stylize_one(args: argparse.Namespace, method: str, content_path: Path, out: Path,
                 styles: list, masks: list | None, quiet: bool) -> None:
    from .image import fit_size, load_image, resize, save_image
    from .stylizers.optimize import OptimizeOptions, stylize_optimize

    n = len(styles)
    inputs = [content_path, *args.styles, *(args.mask or [])]
    t0 = time.perf_counter()
    loaded = load_image(content_path, max_pixels=args.max_input_pixels)
    content = loaded.rgb
    h, w = fit_size(*content.shape[-2:], size=args.size, max_pixels=args.max_pixels)
    content = resize(content, (h, w))
    preserve = None if args.preserve_color == "none" else args.preserve_color

    if method == "optimize":
        snapshot_dir = args.snapshot_dir
        if args.snapshot_every and not snapshot_dir:
            snapshot_dir = str(out.with_name(out.stem + "_snapshots"))
        d = OptimizeOptions()
        options = OptimizeOptions(
            optimizer=args.optimizer, lr=args.lr, steps=args.steps, step_decay=args.step_decay,
            max_work=args.max_work, scales=args.scales,
            coarse_size=args.coarse_size, init=args.init, content_weight=args.content_weight,
            style_weight=args.style_weight, tv_weight=args.tv_weight,
            content_layers=args.content_layers or d.content_layers,
            style_layers=args.style_layers or d.style_layers,
            style_weights=args.style_weights, style_scale=args.style_scale, preserve_color=preserve,
            early_stop_tol=args.early_stop, seed=args.seed, pooling=args.pooling, weights=args.weights,
            device=args.device, snapshot_every=args.snapshot_every, snapshot_dir=snapshot_dir,
        )
        options.validate(n)
        callback, close = _progress(quiet, "stylize")
        try:
            result = stylize_optimize(content, styles, options, callback=callback)
        finally:
            close()
    else:
        from . import _import_fast

        fast = _import_fast()
        if args.seed is not None:
            import torch

            torch.manual_seed(args.seed)
        options = fast.FastOptions(alpha=args.alpha, style_weights=args.style_weights,
                                   masks=[resize(m, (h, w)) for m in masks] if masks else None,
                                   preserve_color=preserve, tile=args.tile, device=args.device, model=args.model)
        result = fast.stylize_fast(content, styles, options)
    save_image(result, out, alpha=loaded.alpha, overwrite=args.force, inputs=inputs)
    rh, rw = result.shape[-2:]
    print(f"wrote {out} ({rw}x{rh}, {method}) in {time.perf_counter() - t0:.1f} s")


def cmd_train(args: argparse.Namespace) -> int:
    from .errors import StyleTransferError
    from .training import TrainConfig, Trainer

    for flag, folder in (("--content", args.content), ("--style", args.style)):
        if not Path(folder).is_dir():
            raise StyleTransferError(f"{flag} {folder}: no such folder")
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
              if f.name not in _TRAIN_SKIP}
    cfg = TrainConfig(content_dir=args.content, style_dir=args.style, out_dir=args.out, **values)
    cfg.validate()
    last = Trainer(cfg, resume=args.resume).fit()
    summary = ", ".join(f"{k} {v:.4g}" for k, v in sorted(last.items()))
    print(f"training finished; run folder {args.out}" + (f" (last step: {summary})" if summary else ""))
    return 0


# ----- entry point -------------------------------------------------------------------------------

def _error(message: str, code: int) -> int:
    message = " ".join(str(message).split())  # one line
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code (``sys.exit(main())``)."""
    from .errors import StyleTransferError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            argv = ["demo", *argv]  # `styletransfer -q`, `styletransfer --size 256`: the demo's options
        args = parser.parse_args(argv)
        code = args.func(args)
        return int(code or 0)
    except CLIError as exc:
        return _error(str(exc), 2)
    except StyleTransferError as exc:
        return _error(str(exc), 1)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _error("out of memory: try a smaller --size or --max-pixels", 1)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except (OSError, ValueError, RuntimeError) as exc:
        if os.environ.get("STYLETRANSFER_DEBUG"):
            raise
        return _error(f"{exc.__class__.__name__}: {exc}", 1)
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("STYLETRANSFER_DEBUG"):
            raise
        return _error(f"unexpected {exc.__class__.__name__}: {exc}", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
