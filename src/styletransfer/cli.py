"""Command line: ``styletransfer`` (demo), ``styletransfer stylize``, ``styletransfer train``
(and ``styletransfer serve`` when the web part is installed).

Every user error ends as one line ``styletransfer: error: ...`` on stderr and a non-zero exit
code (2 for bad command-line usage, 1 for bad input files or values, 130 for Ctrl-C, 143 for
SIGTERM, which cleans up as Ctrl-C does); never a traceback (set ``STYLETRANSFER_DEBUG=1`` to see
one for an unexpected error).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .argtypes import positive_int
from .errors import CLIError
from .image import check_input_files as _check_files

PROG = "styletransfer"
METHODS = ("auto", "optimize", "fast")
DEMO_NAME = "styletransfer-demo"
DEMO_SIZE_ENV = "STYLETRANSFER_DEMO_SIZE"  # the demo's output size (tests use a tiny one)


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and raise instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see: {self.prog} --help)")


# ----- parser ------------------------------------------------------------------------------------

_FMT = argparse.RawDescriptionHelpFormatter

DESCRIPTION = """\
Neural style transfer: repaint a photo in the style of one or more paintings.

Run without arguments to stylize a built-in photo with a built-in style (a quick demo).

commands:
  stylize CONTENT STYLE [STYLE ...] -o OUT   stylize an image (see: styletransfer stylize --help)
  demo                                       the built-in demo (what no arguments does)
  train --content DIR --style DIR --out DIR  train a feed-forward (AdaIN) decoder
  batch INPUT --styles STYLE... -o OUT_DIR   stylize a collection, resumable (--ray: on a cluster)
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
                   help="output image (.png, .jpg, .webp, .tif, .bmp), or a folder (one PNG per photo, "
                        "named after it); never overwritten without --force")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists (never an input)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="optimize: Gatys optimisation, best quality; fast: AdaIN feed-forward, one pass; "
                        "auto (default): fast if its built-in model is installed (or a fast-mode option "
                        "such as --model is given), else optimize")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (scales, steps, tiles) and the memory and time estimate, then exit")
    g = p.add_argument_group("size")
    g.add_argument("--size", type=positive_int, default=512, metavar="PX",
                   help="longest side of the output (default 512)")
    g.add_argument("--max-pixels", type=positive_int, metavar="N",
                   help="cap the output at N pixels (keeps the aspect ratio)")
    g.add_argument("--max-input-pixels", type=positive_int, default=80_000_000, metavar="N",
                   help="refuse input images larger than N pixels (decompression-bomb guard; default 80M)")
    groups = {
        "shared": p.add_argument_group("style (both methods)"),
        "optimize": p.add_argument_group("optimisation (--method optimize)"),
        "fast": p.add_argument_group("fast mode (--method fast)"),
    }
    from .clioptions import stylize_flags

    for spec in stylize_flags():
        spec.add_to(groups[spec.method])
    groups["fast"].add_argument("--mask", action="append", metavar="FILE",
                                help="spatial mask (white = this style), given once per STYLE, in the same order")
    g = p.add_argument_group("general")
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
    p.add_argument("--method", choices=("auto", "fast", "optimize"), default="auto",
                   help="auto (default): fast (seconds) when the built-in model is installed, else optimize "
                        "(best quality, minutes)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    # -- train --
    _add_train_parser(sub)
    from .export import add_export_parser  # -- export (ONNX for apps) --
    add_export_parser(sub)
    from .video_cli import add_video_parser  # -- video --
    add_video_parser(sub)
    from .distill_cli import add_distill_parser  # -- distill (the slim student encoder) --
    add_distill_parser(sub)
    from .batch_cli import add_batch_parser  # -- batch (collections; --ray) --
    add_batch_parser(sub)

    # -- serve (owned by the web part) --
    try:
        from . import web
    except ImportError:
        web = None  # type: ignore[assignment]
    if web is not None and hasattr(web, "add_serve_parser"):
        web.add_serve_parser(sub).set_defaults(func=cmd_serve)
    return parser


def _demo_photos() -> tuple[str, ...]:
    from .demo import CONTENT_PHOTOS

    return CONTENT_PHOTOS


_TRAIN_HELP = {
    "student": "train on this slim student encoder file (a distilled 1/4-width VGG19) instead of the full VGG19; "
               "the model file then carries it",
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
    from .clioptions import add_config_flags

    add_config_flags(p, TrainConfig, _TRAIN_SKIP, _TRAIN_HELP)
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
    from . import fast_available
    from .demo import DEMO_STYLE_WEIGHT, content_photo, swirl_style
    from .errors import StyleTransferError
    from .image import check_output_path, fit_size, resize, save_image
    from .plan import format_seconds, plan_optimize
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
    method = args.method
    if method == "auto":
        method = "fast" if fast_available() else "optimize"
    out = Path(args.output) if args.output else _fresh_demo_path()
    check_output_path(out, overwrite=False)
    t0 = time.perf_counter()
    content = content_photo(args.photo)
    content = resize(content, fit_size(*content.shape[-2:], size=size))
    style = swirl_style(512)
    options = OptimizeOptions(device=args.device, seed=0, style_weight=DEMO_STYLE_WEIGHT)
    if method == "fast":
        from .stylizers.fast import FastOptions, stylize_fast

        result = stylize_fast(content, [style], FastOptions(device=args.device))
    else:
        callback, close = _progress(args.quiet, "demo")
        try:
            result = stylize_optimize(content, [style], options, callback=callback)
        finally:
            close()
    save_image(result, out)
    elapsed = time.perf_counter() - t0
    h, w = result.shape[-2:]
    print(f"wrote {out.resolve()} ({w}x{h}, scikit-image '{args.photo}' in the built-in 'swirls' style, "
          f"{method} mode) in {elapsed:.1f} s")
    if method == "fast":
        guess = format_seconds(plan_optimize(h, w, options).seconds)
        print(f"for the best quality (Gatys optimisation, about {guess} on a 2-core CPU): "
              f"styletransfer demo --method optimize")
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    from .errors import StyleTransferError
    from .image import load_image

    n = len(args.styles)
    if not Path(args.content).is_dir():  # a folder of photos is a batch
        _check_files([args.content], "content")
    _check_files(args.styles, "style")
    if args.mask:
        _check_files(args.mask, "--mask")
    method, options = _options(args)
    if getattr(options, "weights", None) and not Path(options.weights).is_file():
        raise StyleTransferError(f"--weights {options.weights}: no such file")
    if getattr(options, "model", None):
        from .stylizers.fast_model import check_model_arg

        check_model_arg(options.model)
    if method == "fast" and args.mask and len(args.mask) != n:
        raise CLIError(f"--mask: give one mask per style image ({n}), got {len(args.mask)}")
    jobs = _stylize_jobs(args)
    t_all = time.perf_counter()
    styles = [load_image(s, max_pixels=args.max_input_pixels).rgb for s in args.styles]
    if args.mask:
        masks = [load_image(m, max_pixels=args.max_input_pixels).rgb.mean(dim=1, keepdim=True) for m in args.mask]
        options = dataclasses.replace(options, masks=masks)
    failed = 0
    for content_path, out in jobs:
        try:
            _stylize_one(args, method, options, content_path, out, styles, quiet=args.quiet or len(jobs) > 1)
        except StyleTransferError as exc:
            if len(jobs) == 1:
                raise
            failed += 1
            _error(str(exc), 1)  # a batch goes on past a bad photo, and says so
    if len(jobs) > 1 and not args.dry_run:
        print(f"{len(jobs) - failed} of {len(jobs)} photos stylized into {args.output} "
              f"in {time.perf_counter() - t_all:.1f} s" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _options(args: argparse.Namespace) -> tuple[str, Any]:
    """(method, OptimizeOptions or FastOptions) from the flags; ``auto`` follows ``stylize()``'s
    rule (fast when its built-in model is installed), unless the flags name one method's options."""
    from . import fast_available, resolve_device
    from . import clioptions as co
    from .errors import StyleTransferError

    specs = co.stylize_flags()
    values = co.given(args, specs)
    only = {m: [co.flag_of(k, specs) for k in values if co.method_of(k, specs) == m] for m in (co.OPTIMIZE, co.FAST)}
    if args.mask:
        only[co.FAST].append("--mask")
    method = args.method
    if method == "auto":
        if only[co.OPTIMIZE] and only[co.FAST]:
            raise CLIError(f"{only[co.OPTIMIZE][0]} is an option of --method optimize and {only[co.FAST][0]} of "
                           "--method fast: choose one --method")
        method = ("fast" if only[co.FAST] else "optimize" if only[co.OPTIMIZE]
                  else "fast" if fast_available() else "optimize")
    else:
        other = co.FAST if method == "optimize" else co.OPTIMIZE
        if only[other]:
            raise CLIError(f"{only[other][0]} only applies to --method {other}")
    weights = values.get("style_weights")
    if weights is not None:
        if len(weights) != len(args.styles):
            raise CLIError(f"--style-weights: got {len(weights)} weight(s) for {len(args.styles)} style image(s)")
        if sum(weights) <= 0:
            raise CLIError("--style-weights: the weights must not all be 0")
    try:
        resolve_device(values.get("device", "auto"))
    except ValueError as exc:
        raise CLIError(f"--device: {exc}") from None
    opt_cls, fast_cls = co.option_classes()
    cls = opt_cls if method == "optimize" else fast_cls
    options = co.build_options(cls, values)
    try:
        options.validate(len(args.styles))
    except StyleTransferError as exc:  # the values came from flags: a usage error
        raise CLIError(co.name_flags(str(exc), specs)) from None
    return method, options


def _stylize_jobs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """(content, output) pairs: one for a photo; one per image for a folder of photos.

    Every output is checked (name, folder writable, not an input, not there without --force)
    before the first, slow, stylization.
    """
    from .errors import StyleTransferError
    from .image import SAVE_FORMATS, check_output_path, check_writable_folder, list_images

    content = Path(args.content)
    inputs = [args.content, *args.styles, *(args.mask or [])]
    out = Path(args.output)
    if not content.is_dir():
        if out.is_dir():  # -o FOLDER: the photo's name, as for a folder of photos
            out = out / f"{content.stem}.png"
        return [(content, check_output_path(out, overwrite=args.force, inputs=inputs))]
    if out.suffix.lower() in SAVE_FORMATS or (out.exists() and not out.is_dir()):
        raise StyleTransferError(f"-o {args.output}: CONTENT is a folder, so OUT must be a folder too")
    if out.resolve() == content.resolve():
        raise StyleTransferError(f"-o {args.output}: write into another folder than the photos' own")
    photos = list_images(content)
    if not out.is_dir():
        parent = next(p for p in out.resolve().parents if p.exists())
        check_writable_folder(parent, what=f"-o {args.output}")
        if args.dry_run:
            return [(photo, out / f"{photo.stem}.png") for photo in photos]
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StyleTransferError(f"-o {args.output}: cannot create the folder ({exc.strerror or exc})") from None
    jobs = [(photo, out / f"{photo.stem}.png") for photo in photos]
    for photo, path in jobs:
        check_output_path(path, overwrite=args.force, inputs=[photo, *inputs[1:]])
    return jobs


def _plan(method: str, options: Any, height: int, width: int) -> tuple[Any, Any, int | None]:
    """(plan, options, available bytes): the estimate of a run, with fast mode's tile fitted to
    the memory available. Only CPU runs are checked (the figures are the CPU's)."""
    import torch

    from . import plan as planning
    from . import resolve_device

    on_cpu = resolve_device(options.device).type == "cpu"
    available = planning.available_memory() if on_cpu else None
    threads = torch.get_num_threads()
    if method == "optimize":
        return planning.plan_optimize(height, width, options, threads=threads), options, available
    plan = planning.plan_fast(height, width, options, threads=threads, available=available)
    if options.tile is None and plan.tile is not None and plan.tile != planning.FAST_DEFAULT_TILE:
        options = dataclasses.replace(options, tile=plan.tile)  # a smaller tile than the default: it fits
    return plan, options, available


def _memory_hints(method: str, options: Any, height: int, width: int, available: int) -> list[str]:
    """What to try when a run does not fit: a --size that does, and the fast method."""
    from . import fast_available
    from . import plan as planning

    if method == "optimize":
        side = planning.largest_size_that_fits(
            height, width, lambda h, w: planning.plan_optimize(h, w, options).peak_bytes <= available)
        fast_ok = fast_available() or getattr(options, "model", None)
    else:
        side = planning.largest_size_that_fits(
            height, width, lambda h, w: planning.plan_fast(h, w, options, available=available).peak_bytes
            <= available)
        fast_ok = False
    hints = [f"--size {side}"] if side else []
    return hints + (["--method fast"] if fast_ok else [])


def _stylize_one(args: argparse.Namespace, method: str, options: Any, content_path: Path, out: Path,
                 styles: list, quiet: bool) -> None:
    from . import plan as planning
    from . import stylize
    from .image import fit_size, load_image, save_image

    inputs = [content_path, *args.styles, *(args.mask or [])]
    t0 = time.perf_counter()
    loaded = load_image(content_path, max_pixels=args.max_input_pixels)
    h, w = fit_size(*loaded.rgb.shape[-2:], size=args.size, max_pixels=args.max_pixels)
    if method == "optimize" and options.snapshot_every and not options.snapshot_dir:
        options = dataclasses.replace(options, snapshot_dir=str(out.with_name(out.stem + "_snapshots")))
    plan, options, available = _plan(method, options, h, w)
    if args.dry_run:
        print(f"{content_path} -> {out}")
        print(plan.describe())
        if available is not None:
            try:
                planning.check_fits(plan, available, _memory_hints(method, options, h, w, available))
                print(f"fits: {planning.format_bytes(available)} available")
            except Exception as exc:  # noqa: BLE001 - a StyleTransferError: said, not raised
                print(f"would be refused: {exc}")
        return
    if available is not None and plan.peak_bytes > available:
        planning.check_fits(plan, available, _memory_hints(method, options, h, w, available))
    if not quiet:
        print(f"{PROG}: {w}x{h} with --method {method}: about {planning.format_bytes(plan.peak_bytes)} of memory "
              f"and {planning.format_seconds(plan.seconds)}", file=sys.stderr)
    callback, close = _progress(quiet or method == "fast", "stylize")
    try:
        result = stylize(loaded.rgb, styles, method=method, options=options, size=args.size,
                         max_pixels=args.max_pixels, callback=callback)
    finally:
        close()
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
    try:
        cfg.validate()
    except StyleTransferError as exc:  # the values came from flags: bad usage (exit 2), as for stylize
        raise CLIError(str(exc)) from None
    with Trainer(cfg, resume=args.resume) as trainer:  # leaves a torchrun process group cleanly
        last = trainer.fit()
    summary = ", ".join(f"{k} {v:.4g}" for k, v in sorted(last.items()))
    print(f"training finished; run folder {args.out}" + (f" (last step: {summary})" if summary else ""))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``styletransfer serve``: the checks that need no server first, with this CLI's messages."""
    import importlib.util

    from . import web

    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("multipart", "python-multipart")):
        if importlib.util.find_spec(module) is None and not (
                module == "multipart" and importlib.util.find_spec("python_multipart") is not None):
            raise CLIError(f"serve needs the web extra ({package} is not installed): "
                           "pip install 'styletransfer[web]'")
    fast_model = getattr(args, "fast_model", None)
    if fast_model and not os.path.isfile(fast_model):
        raise CLIError(f"--fast-model {fast_model}: no such file")
    try:
        web.settings_from_args(args).validate()
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return web.serve_command(args)


# ----- entry point -------------------------------------------------------------------------------

def _error(message: str, code: int) -> int:
    message = " ".join(str(message).split())  # one line
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code (``sys.exit(main())``)."""
    from .errors import StyleTransferError
    from .signals import Terminated, sigterm_as_interrupt

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            argv = ["demo", *argv]  # `styletransfer -q`, `styletransfer --size 256`: the demo's options
        args = parser.parse_args(argv)
        with sigterm_as_interrupt():  # `kill`/`timeout` clean up like Ctrl-C (no .part left)
            code = args.func(args)
        return int(code or 0)
    except CLIError as exc:
        return _error(str(exc), 2)
    except StyleTransferError as exc:
        return _error(str(exc), 1)
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return 143  # 128 + SIGTERM, as the shell reports a process killed by it
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
