"""Memory of ``painterly video``: it must stream, with RAM bounded by a few frames (issue 9).

Synthetic clips (a pan over a smooth random texture, H.264, made with PyAV in a temporary folder)
are stylized by ``stylize_video`` in a fresh process each (so ``ru_maxrss`` is that run's peak
alone), which also samples its resident memory (``/proc/self/statm``) after every frame.

- ``big``: a 3840x2160 clip of a few frames, (1) with ``--size`` limiting the processing (decoded
  at 4K, stylized and encoded at ``--big-size``) and (2) at full size (``--big-full``: the fast
  stylizer tiles the frame; the flow, blend and encoder work on the 4K frames).
- ``long``: ``N`` and ``4N`` small frames, side by side: the peak and the resident memory after
  frame N/4, N and (in the long run) 4N must not grow with the frame count.

Networks: the real VGG19 and ``--model`` (an AdaIN ``model.safetensors``), or with ``--tiny`` the
tests' stand-ins (VGG19 at 1/16 width, a small random decoder): they measure the pipeline's own
memory (decoding, flow, blend, encoding) without the cost of the real networks, whose working set
is a separate, size-bound figure (``bench_memory.py``). Run at full scale (minutes to hours on 2
CPU cores with the real networks at 4K):

    python benchmarks/bench_video_memory.py --model ../shared/models/adain-v1/model.safetensors
    python benchmarks/bench_video_memory.py --tiny --parts long --long-frames 200     # quick check
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

CHILD = r"""
import json, os, resource, sys, time
import torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from painterly.video import VideoOptions, stylize_video
from painterly.stylizers.fast import FastOptions
from painterly.stylizers.optimize import OptimizeOptions

PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE

if args["tiny"]:
    from painterly.encoders import VGG19Encoder
    from painterly.models import Decoder
    torch.manual_seed(0)
    enc = VGG19Encoder(width_divisor=16)
    dec = Decoder(in_channels=32, width=0.125, input_scale=1e-3).eval()
else:
    from painterly.encoders import vgg19
    enc = vgg19(device="cpu")
    dec = None  # stylize_video loads every level of the model, as the CLI does
from painterly.image import load_image
style = load_image(args["style"]).rgb if args["style"] else None
if style is None:
    from painterly.demo import swirl_style
    style = swirl_style(256)
opts = VideoOptions(method=args["method"], size=args["size"], temporal=args["temporal"], audio=False,
                    fast=FastOptions(device="cpu", tile=args["tile"], model=args["model"]),
                    optimize=OptimizeOptions(device="cpu", steps=args["steps"], seed=0),
                    warm_steps=args["warm_steps"])
samples = []
def callback(done, total):
    samples.append(rss())
base = rss()
t0 = time.perf_counter()
r = stylize_video(args["input"], [style], args["output"], opts, encoder=enc, decoder=dec, callback=callback)
print(json.dumps({"frames": r.frames, "size": [r.width, r.height], "seconds": time.perf_counter() - t0,
                  "base": base, "samples": samples,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> None:
    """A pan over a smooth random texture (3 px per frame), H.264, made with PyAV."""
    import av
    import cv2

    rng = np.random.default_rng(0)
    span = width + 3 * frames
    coarse = rng.random((max(2, height // 24), max(2, span // 24), 3)).astype(np.float32)
    texture = cv2.resize(coarse, (span, height), interpolation=cv2.INTER_CUBIC)
    texture = (np.clip(texture, 0, 1) * 255).astype(np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "23", "preset": "ultrafast"}
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, 3 * i: 3 * i + width]), format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def run_child(args: argparse.Namespace, clip: Path, out: Path, size: int | None, tile: int | None) -> dict:
    params = {"input": str(clip), "output": str(out), "size": size, "tile": tile, "tiny": args.tiny,
              "model": args.model, "style": args.style, "method": args.method, "temporal": not args.no_temporal,
              "steps": args.steps, "warm_steps": args.warm_steps, "threads": args.threads}
    if out.exists():
        out.unlink()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(params)], capture_output=True, text=True,
                          env=dict(os.environ))
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2 ** 20:7.0f} MiB"


def frame_mib(width: int, height: int) -> float:
    return width * height * 3 / 2 ** 20  # one RGB uint8 frame


def big(args: argparse.Namespace, tmp: Path) -> None:
    w, h = args.big_width, args.big_height
    clip = tmp / "big.mp4"
    t0 = time.perf_counter()
    make_clip(clip, w, h, args.big_frames)
    print(f"\nbig: {w}x{h}, {args.big_frames} frames (made in {time.perf_counter() - t0:.0f} s); one RGB frame at "
          f"full size = {frame_mib(w, h):.0f} MiB, as float32 {4 * frame_mib(w, h):.0f} MiB")
    runs = [(f"--size {args.big_size}", args.big_size, None)]
    if args.big_full:
        runs.append((f"full size, tile {args.tile or 'auto'}", None, args.tile))
    print(f"{'run':28s} {'before':>11s} {'peak':>11s} {'peak-before':>12s} {'s/frame':>8s}")
    for name, size, tile in runs:
        r = run_child(args, clip, tmp / "big_out.mp4", size, tile)
        print(f"{name:28s} {mib(r['base'])} {mib(r['peak'])} {mib(r['peak'] - r['base'])}  "
              f"{r['seconds'] / r['frames']:8.2f}   ({r['frames']} frames at {r['size'][0]}x{r['size'][1]})",
              flush=True)


def long(args: argparse.Namespace, tmp: Path) -> None:
    n = args.long_frames
    w, h = args.long_width, args.long_height
    print(f"\nlong: {w}x{h} frames (one RGB frame = {frame_mib(w, h) * 1024:.0f} KiB), N = {n} and 4N = {4 * n}")
    results = {}
    for frames in (n, 4 * n):
        clip = tmp / f"long{frames}.mp4"
        make_clip(clip, w, h, frames)
        results[frames] = run_child(args, clip, tmp / "long_out.mp4", None, None)
    print(f"{'frames':>6s} {'before':>11s} {'RSS @N/4':>11s} {'RSS @N':>11s} {'RSS @4N':>11s} {'peak':>11s} "
          f"{'s/frame':>8s}")
    for frames, r in results.items():
        s = r["samples"]
        at4n = mib(s[4 * n - 1]) if len(s) >= 4 * n else " " * 11
        print(f"{r['frames']:6d} {mib(r['base'])} {mib(s[n // 4 - 1])} {mib(s[n - 1])} {at4n} {mib(r['peak'])} "
              f"{r['seconds'] / r['frames']:8.3f}", flush=True)
    s = results[4 * n]["samples"]
    growth = s[4 * n - 1] - s[n - 1]
    print(f"growth of the resident memory from frame {n} to frame {4 * n}: {growth / 2 ** 20:+.1f} MiB "
          f"({growth / (3 * n) / 1024:+.1f} KiB per frame); peak 4N - peak N: "
          f"{(results[4 * n]['peak'] - results[n]['peak']) / 2 ** 20:+.1f} MiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=("big", "long"), default=["big", "long"])
    p.add_argument("--tiny", action="store_true", help="the tests' stand-in networks instead of the real ones")
    p.add_argument("--model", help="fast: decoder model.safetensors (real networks)")
    p.add_argument("--style", help="style image (default brushstrokes.jpg, or a procedural swirl)")
    p.add_argument("--method", choices=("fast", "optimize"), default="fast")
    p.add_argument("--steps", type=int, default=20, help="optimize: steps of the first frame")
    p.add_argument("--warm-steps", type=int, default=5, help="optimize: steps of the later frames")
    p.add_argument("--no-temporal", action="store_true", help="per-frame (no flow, no blend)")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the child")
    p.add_argument("--tile", type=int, help="fast: tile size at full size (default automatic)")
    p.add_argument("--big-width", type=int, default=3840)
    p.add_argument("--big-height", type=int, default=2160)
    p.add_argument("--big-frames", type=int, default=4)
    p.add_argument("--big-size", type=int, default=512, help="--size of the limited big run")
    p.add_argument("--big-full", action="store_true", help="also stylize the big clip at full size")
    p.add_argument("--long-frames", type=int, default=200, help="N (the long run has 4N)")
    p.add_argument("--long-width", type=int, default=160)
    p.add_argument("--long-height", type=int, default=96)
    args = p.parse_args()
    if not args.tiny and args.method == "fast" and not args.model:
        p.error("--model is needed for the fast method with the real networks (or use --tiny)")
    if args.style is None and (DATA / "train" / "style" / "brushstrokes.jpg").exists():
        args.style = str(DATA / "train" / "style" / "brushstrokes.jpg")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"{cpu}, {os.cpu_count()} cores, {args.threads} torch thread(s); networks: "
          f"{'tiny stand-ins' if args.tiny else 'real VGG19 + ' + (args.model or 'optimize')}; method {args.method}, "
          f"{'per-frame' if args.no_temporal else 'temporal'}")
    with tempfile.TemporaryDirectory() as tmp:
        if "big" in args.parts:
            big(args, Path(tmp))
        if "long" in args.parts:
            long(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
