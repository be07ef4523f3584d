"""``painterly demo`` (and ``painterly`` with no command): a built-in photo in the
built-in 'swirls' style."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from ..argtypes import positive_int
from ..errors import CLIError
from .common import progress

DEMO_NAME = "painterly-demo"
DEMO_SIZE_ENV = "PAINTERLY_DEMO_SIZE"  # the demo's output size (tests use a tiny one)


def add_parser(sub: Any) -> None:
    """Register ``demo`` on the command's subparsers."""
    from .. import METHODS
    from ..demo import CONTENT_PHOTOS

    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("demo", help="stylize a built-in photo with a built-in style", formatter_class=fmt,
                       description="Stylize a scikit-image photo with the built-in 'swirls' painting. "
                                   "Writes painterly-demo.png (or -1, -2... if taken) in the current folder.")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: a fresh painterly-demo*.png)")
    p.add_argument("--photo", default="astronaut", choices=CONTENT_PHOTOS, help="content photo (default astronaut)")
    p.add_argument("--size", type=positive_int, metavar="PX",
                   help=f"longest side of the output (default 512, or ${DEMO_SIZE_ENV})")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (default): fast (seconds) when the built-in model is installed, else optimize "
                        "(best quality, minutes)")
    p.add_argument("--model", metavar="MODEL",
                   help="fast mode: a built-in model (slim, the default; large) or a model file")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)


def _fresh_demo_path() -> Path:
    """``painterly-demo.png``, or the first of ``painterly-demo-1.png``, ... not taken."""
    path = Path(f"{DEMO_NAME}.png")
    i = 1
    while path.exists():
        path = Path(f"{DEMO_NAME}-{i}.png")
        i += 1
    return path


def _env_size() -> int:
    """The output size of ``$PAINTERLY_DEMO_SIZE``, else 512."""
    from ..errors import StyleTransferError

    env = os.environ.get(DEMO_SIZE_ENV)
    try:
        size = int(env) if env else 512
    except ValueError:
        raise StyleTransferError(f"${DEMO_SIZE_ENV} must be a whole number, got {env!r}") from None
    if size < 16:
        raise StyleTransferError(f"${DEMO_SIZE_ENV} must be >= 16, got {size}")
    return size


def cmd_demo(args: argparse.Namespace) -> int:
    """Stylize the demo photo; fast when its model is installed, and then say how to get the best."""
    from .. import resolve_method
    from ..demo import DEMO_STYLE_WEIGHT, content_photo, swirl_style
    from ..image import check_output_path, fit_size, resize, save_image
    from ..plan import format_seconds, plan_optimize
    from ..stylizers.optimize import OptimizeOptions, stylize_optimize

    size = args.size if args.size is not None else _env_size()
    method = resolve_method(args.method, "fast" if args.model else None)
    if args.model:
        from ..stylizers.fast_model import check_model_arg

        if method != "fast":
            raise CLIError("--model is an option of the fast mode: drop --method optimize")
        check_model_arg(args.model)
    out = Path(args.output) if args.output else _fresh_demo_path()
    check_output_path(out, overwrite=False)
    t0 = time.perf_counter()
    content = content_photo(args.photo)
    content = resize(content, fit_size(*content.shape[-2:], size=size))
    style = swirl_style(512)
    options = OptimizeOptions(device=args.device, seed=0, style_weight=DEMO_STYLE_WEIGHT)
    if method == "fast":
        from ..stylizers.fast import FastOptions, stylize_fast

        result = stylize_fast(content, [style], FastOptions(device=args.device, model=args.model))
    else:
        callback, close = progress(args.quiet, "demo")
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
              f"painterly demo --method optimize")
    return 0

