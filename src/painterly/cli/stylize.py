"""``painterly stylize CONTENT STYLE [STYLE ...] -o OUT``: one photo, or a folder of photos."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from ..argtypes import positive_int
from ..errors import CLIError
from ..image import check_input_files
from ..clioptions import stylize_flags
from .common import PROG, add_stylize_flags, error_line, method_options, progress

STYLIZE_EPILOG = """\
examples:
  painterly stylize photo.jpg starry.jpg -o out.png
  painterly stylize photo.jpg a.jpg b.jpg --style-weights 0.7 0.3 -o blend.png
  painterly stylize photo.jpg starry.jpg --preserve-color luminance --size 768 -o out.png
  painterly stylize photo.jpg starry.jpg --method fast --alpha 0.8 -o quick.png

speed: the optimisation works coarse-to-fine (small image first, each scale twice as large);
--steps sets the coarsest scale's step budget and every finer scale gets --step-decay times fewer.
"""



def add_parser(sub: Any) -> None:
    """Register ``stylize`` on the command's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("stylize", help="stylize an image", formatter_class=fmt, epilog=STYLIZE_EPILOG,
                       description="Stylize CONTENT with one or more STYLE images and write OUT.")
    p.add_argument("content", metavar="CONTENT",
                   help="the photo to repaint, or a folder of photos (then OUT is a folder too)")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are blended")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output image (.png, .jpg, .webp, .tif, .bmp), or a folder (one PNG per photo, "
                        "named after it); never overwritten without --force")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists (never an input)")
    from .. import METHODS

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
    add_stylize_flags(p, "spatial mask (white = this style), given once per STYLE, in the same order")
    g = p.add_argument_group("general")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_stylize)


def cmd_stylize(args: argparse.Namespace) -> int:
    from ..errors import StyleTransferError
    from ..image import load_image

    n = len(args.styles)
    if not Path(args.content).is_dir():  # a folder of photos is a batch
        check_input_files([args.content], "content")
    check_input_files(args.styles, "style")
    if args.mask:
        check_input_files(args.mask, "--mask")
    method, options = method_options(args, stylize_flags(), args.method, n)
    if getattr(options, "weights", None) and not Path(options.weights).is_file():
        raise StyleTransferError(f"--weights {options.weights}: no such file")
    if getattr(options, "model", None):
        from ..stylizers.fast_model import check_model_arg

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
            error_line(str(exc))  # a batch goes on past a bad photo, and says so
    if len(jobs) > 1 and not args.dry_run:
        print(f"{len(jobs) - failed} of {len(jobs)} photos stylized into {args.output} "
              f"in {time.perf_counter() - t_all:.1f} s" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0




def _stylize_jobs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """(content, output) pairs: one for a photo; one per image for a folder of photos.

    Every output is checked (name, folder writable, not an input, not there without --force)
    before the first, slow, stylization.
    """
    from ..errors import StyleTransferError
    from ..image import SAVE_FORMATS, check_output_path, check_writable_folder, list_images

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

    from .. import plan as planning
    from .. import resolve_device

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
    from .. import fast_available
    from .. import plan as planning

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
    from .. import plan as planning
    from .. import stylize
    from ..image import fit_size, load_image, save_image

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
    callback, close = progress(quiet or method == "fast", "stylize")
    try:
        result = stylize(loaded.rgb, styles, method=method, options=options, size=args.size,
                         max_pixels=args.max_pixels, callback=callback)
    finally:
        close()
    save_image(result, out, alpha=loaded.alpha, overwrite=args.force, inputs=inputs)
    rh, rw = result.shape[-2:]
    print(f"wrote {out} ({rw}x{rh}, {method}) in {time.perf_counter() - t0:.1f} s")


