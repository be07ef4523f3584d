"""Check the run estimates of ``painterly.plan`` against measured peak memory and time.

Each run is a fresh process (its peak RSS, ``VmHWM``, is that run's alone; ``ru_maxrss`` would start from the parent's) with the real
VGG19 and astronaut + swirls. It prints, per size, the estimated and measured peak RSS and
seconds per step (optimize) or seconds per image (fast).

    python benchmarks/bench_memory.py                          # optimize at 256, 512, 1024 px
    python benchmarks/bench_memory.py --sizes 256 512 --steps 3
    python benchmarks/bench_memory.py --method fast --model M --sizes 512 1024 2048
    python benchmarks/bench_memory.py --method fast --model M --sizes 2048 --tile 512

An optimize run here is one scale of ``--steps`` L-BFGS steps (the finest scale is the memory
peak of a coarse-to-fine run; the estimate is made for exactly that schedule).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import torch
def hwm_kib():  # this process's peak RSS; ru_maxrss would start from the parent's peak (kept over exec)
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
from painterly.demo import content_photo, swirl_style
from painterly.image import resize
method, size, steps, tile, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
content = resize(content_photo("astronaut"), (size, size))
style = swirl_style(512)
if method == "optimize":
    from painterly.stylizers.optimize import OptimizeOptions, stylize_optimize
    from painterly.encoders import vgg19
    vgg19(None, "max", "cpu")
    times = []
    def callback(step, total, loss):
        times.append(time.perf_counter())
    opts = OptimizeOptions(device="cpu", seed=0, steps=[steps], early_stop_tol=0)
    t0 = time.perf_counter()
    stylize_optimize(content, [style], opts, callback=callback)
    per = (times[-1] - times[0]) / max(1, len(times) - 1) if len(times) > 1 else times[0] - t0
    seconds = time.perf_counter() - t0
else:
    from painterly.stylizers.fast import FastOptions, stylize_fast
    opts = FastOptions(device="cpu", model=model or None, tile=int(tile) if tile != "-" else None)
    t0 = time.perf_counter()
    stylize_fast(content, [style], opts)
    seconds = per = time.perf_counter() - t0
print(json.dumps({"peak": hwm_kib() * 1024,
                  "per_step": per, "seconds": seconds}))
"""


def measure(method: str, size: int, steps: int, tile: int | None, model: str | None) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, method, str(size), str(steps),
                           str(tile) if tile else "-", model or ""],
                          capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def estimate(method: str, size: int, steps: int, tile: int | None, model: str | None) -> dict:
    from painterly import plan
    from painterly.stylizers.fast import FastOptions
    from painterly.stylizers.optimize import OptimizeOptions

    if method == "optimize":
        p = plan.plan_optimize(size, size, OptimizeOptions(steps=[steps], early_stop_tol=0), threads=1)
        return {"peak": p.peak_bytes, "per_step": p.seconds_per_step[-1], "seconds": p.seconds}
    p = plan.plan_fast(size, size, FastOptions(tile=tile, model=model), threads=1)
    return {"peak": p.peak_bytes, "per_step": p.seconds, "seconds": p.seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("optimize", "fast"), default="optimize")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--steps", type=int, default=4, help="L-BFGS steps of an optimize run (default 4)")
    parser.add_argument("--tile", type=int, help="fast mode tile (default: automatic)")
    parser.add_argument("--model", help="fast mode decoder (default: the built-in model)")
    parser.add_argument("--no-estimate", action="store_true", help="measure only (calibration)")
    args = parser.parse_args(argv)

    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"{args.method}, OMP_NUM_THREADS={threads}; GB = 1e9 bytes")
    print(f"{'size':>6} {'measured GB':>12} {'estimate GB':>12} {'ratio':>6} {'s/step':>8} {'est s/step':>10}")
    for size in args.sizes:
        m = measure(args.method, size, args.steps, args.tile, args.model)
        e = None if args.no_estimate else estimate(args.method, size, args.steps, args.tile, args.model)
        est_gb = f"{e['peak'] / 1e9:12.2f}" if e else f"{'-':>12}"
        ratio = f"{e['peak'] / m['peak']:6.2f}" if e else f"{'-':>6}"
        est_s = f"{e['per_step']:10.2f}" if e else f"{'-':>10}"
        print(f"{size:>6} {m['peak'] / 1e9:12.2f} {est_gb} {ratio} {m['per_step']:8.2f} {est_s}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
