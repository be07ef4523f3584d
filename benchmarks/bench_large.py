"""Time one large output with the default optimisation options and report the peak memory.

    python benchmarks/bench_large.py              # 1024 x 1024 (target: < 3 min, < 6 GB on 2 cores)
    python benchmarks/bench_large.py --size 256   # a quick smoke run

The content is scikit-image's astronaut upscaled to the size, the style the built-in "swirls".
Peak memory is the process's maximum resident set size (``ru_maxrss``), which includes the
VGG19 weights (~0.1 GB) and PyTorch itself.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from painterly import OptimizeOptions, save_image
from painterly.demo import content_photo, swirl_style
from painterly.encoders import vgg19
from painterly.image import resize
from painterly.stylizers.optimize import scale_sizes, step_schedule, stylize_optimize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="output side in pixels (square; default 1024)")
    parser.add_argument("--out", type=Path, help="where to save the result (default: a temp file)")
    args = parser.parse_args(argv)

    options = OptimizeOptions(device="cpu", seed=0)
    content = resize(content_photo("astronaut"), (args.size, args.size))
    style = swirl_style(512)
    sizes = scale_sizes(args.size, args.size, options)
    steps = step_schedule(len(sizes), options, [h * w for h, w in sizes])
    print(f"size {args.size}x{args.size}, torch threads {torch.get_num_threads()}, "
          f"scales {[f'{w}x{h}' for h, w in sizes]}, steps {steps}")
    vgg19(None, options.pooling, "cpu")  # weights loaded before the clock starts
    t0 = time.perf_counter()
    result = stylize_optimize(content, [style], options)
    elapsed = time.perf_counter() - t0
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_large_")) / f"large_{args.size}.png"
    save_image(result, out, overwrite=True)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux
    print(f"wrote {out}")
    print(f"time {elapsed:.1f} s peak-rss {peak_gb:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
