"""Benchmark of the feed-forward (fast) stylizer.

Prints, measured side by side in one run on this machine:
- seconds per image at 512^2 and 1024^2 (median of --repeats, after one warm-up);
- process start to written PNG: ``painterly stylize ... --method fast`` at 512^2 in a fresh
  process (imports, weights, style, stylization, PNG);
- bf16 vs fp32 where the CPU has native bf16 (AVX512-BF16/AMX): time and max/mean difference of
  the outputs (elsewhere bf16 is emulated, 10-50x slower, and not used: it says so);
- peak resident memory (RSS) of a fresh process that stylizes a 3840x2160 image;
- the common content + style measure (``common_measure`` of ``benchmarks/bench_optimize.py``:
  our content + style loss with the same VGG19) of fast vs optimisation results on the same
  content/style pairs (lower is better).

    python benchmarks/bench_fast.py                   # all three parts
    python benchmarks/bench_fast.py --skip-quality    # timings and memory only
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from painterly.image import fit_size, from_array, resize  # noqa: E402
from painterly.stylizers.fast import TRANSFORMS, FastOptions, stylize_fast  # noqa: E402


def _images(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    from skimage import data

    content = from_array(data.astronaut())
    style = from_array(data.coffee())
    return resize(content, (side, side)), style


def time_fast(side: int, repeats: int, opts: FastOptions) -> float:
    content, style = _images(side)
    stylize_fast(content, [style], opts)  # warm-up: loads VGG19 and the decoder
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stylize_fast(content, [style], opts)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def start_to_png(opts: FastOptions) -> float:
    """Seconds from process start to a written 512^2 PNG, through the CLI."""
    import tempfile

    from painterly import save_image

    content, style = _images(512)
    with tempfile.TemporaryDirectory() as tmp:
        save_image(content, f"{tmp}/c.png")
        save_image(style, f"{tmp}/s.png")
        cmd = [sys.executable, "-m", "painterly", "stylize", f"{tmp}/c.png", f"{tmp}/s.png", "-o", f"{tmp}/o.png",
               "--method", "fast", "--size", "512", "-q"]
        if opts.model:
            cmd += ["--model", opts.model]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - t0


def bf16_check(opts: FastOptions) -> str:
    """bf16 autocast vs fp32 at 512^2, where the CPU has native bf16."""
    from painterly.device import cpu_has_fast_bf16

    if not cpu_has_fast_bf16():
        return "bf16: not measured (this CPU has no native bf16; emulated bf16 is 10-50x slower, so it is off)"
    content, style = _images(512)
    fp32, bf16 = dataclasses.replace(opts, amp=False), dataclasses.replace(opts, amp=True)
    ref = stylize_fast(content, [style], fp32)
    t0 = time.perf_counter()
    ref = stylize_fast(content, [style], fp32)
    t32 = time.perf_counter() - t0
    stylize_fast(content, [style], bf16)
    t0 = time.perf_counter()
    low = stylize_fast(content, [style], bf16)
    t16 = time.perf_counter() - t0
    d = (low.float() - ref).abs()
    return f"bf16 512x512 {t16:.2f} s vs fp32 {t32:.2f} s; output max diff {float(d.max()):.3f}, mean {float(d.mean()):.4f}"


def peak_rss_4k(opts: FastOptions) -> tuple[float, float]:
    """Run a 3840x2160 stylization in a fresh process; returns (peak RSS GB, seconds)."""
    code = f"""
import json, time, torch
from painterly.image import from_array, resize
from painterly.stylizers.fast import FastOptions, stylize_fast
from skimage import data
def hwm_kib():  # this process's peak RSS; ru_maxrss would start from the parent's peak (kept over exec)
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
content = resize(from_array(data.astronaut()), (2160, 3840))
style = from_array(data.coffee())
t0 = time.perf_counter()
out = stylize_fast(content, [style], FastOptions(device="cpu", model={opts.model!r}, transform={opts.transform!r},
                                                  levels={opts.levels!r}))
assert out.shape == (1, 3, 2160, 3840)
print(json.dumps({{"rss_gb": hwm_kib() / 2**20,
                  "sec": time.perf_counter() - t0}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["rss_gb"], result["sec"]


def quality(size: int, opts: FastOptions, pairs: int) -> list[tuple[str, float, float, float, float]]:
    """(pair, fast score, fast sec, optimize score, optimize sec) on scikit-image pairs."""
    from skimage import data

    from bench_optimize import common_measure
    from painterly import OptimizeOptions, stylize

    def score(image: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> float:
        return common_measure(image, content, style, OptimizeOptions())[0]


    contents = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "rocket": data.rocket()}
    styles = {"coffee": data.coffee(), "hubble": data.hubble_deep_field(), "ihc": data.immunohistochemistry()}
    rows = []
    for (cname, c), (sname, s) in list(zip(contents.items(), styles.items()))[:pairs]:
        content = from_array(c)
        content = resize(content, fit_size(*content.shape[-2:], size=size))
        style = from_array(s)
        t0 = time.perf_counter()
        fast = stylize_fast(content, [style], opts)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        slow = stylize(content, [style], method="optimize")
        t_opt = time.perf_counter() - t0
        rows.append((f"{cname}+{sname}", score(fast, content, style), t_fast, score(slow, content, style), t_opt))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", help="a model file or a built-in model's name: slim, large (default: the default one)")
    p.add_argument("--transform", choices=TRANSFORMS, help="default: the model's own")
    p.add_argument("--levels", nargs="+", help="levels to run (default: all the model has)")
    p.add_argument("--quality-size", type=int, default=384)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args()
    opts = FastOptions(device="cpu", model=args.model, transform=args.transform, levels=args.levels)
    from bench_peers import cpu_name

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU {cpu_name()}; model "
          f"{args.model or 'default'}, transform {args.transform or 'own'}, levels {args.levels or 'all'}")
    t512 = time_fast(512, args.repeats, opts)
    print(f"fast 512x512   {t512:.2f} s/image")
    t1024 = time_fast(1024, args.repeats, opts)
    print(f"fast 1024x1024 {t1024:.2f} s/image")
    print(f"process start to PNG, 512x512 (CLI, default transform/levels): {start_to_png(opts):.2f} s")
    print(bf16_check(opts))
    if not args.skip_memory:
        rss, sec = peak_rss_4k(opts)
        print(f"fast 3840x2160 peak RSS {rss:.2f} GB, {sec:.1f} s")
    if not args.skip_quality:
        print("pair                 fast-score  fast-s  optimize-score  optimize-s")
        for name, qf, tf, qo, to in quality(args.quality_size, opts, args.pairs):
            print(f"{name:20s} {qf:10.4g} {tf:7.2f} {qo:15.4g} {to:11.1f}")
    print(f"fast512 {t512:.3f} fast1024 {t1024:.3f} selfrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")


if __name__ == "__main__":
    main()
