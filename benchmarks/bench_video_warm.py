"""Benchmark of the warm start of ``painterly video --method optimize``: how many steps do the
frames after the first need?

Ruder et al. (2016, "Artistic style transfer for videos") start the optimisation of frame t from
the previous output warped onto it; the frame then needs far fewer steps than one started from
the photo. This measures, on a clip with known motion (``bench_video.py``'s pan or zoom over a
photo of ``../shared/data/examples/content/``, or scikit-image's astronaut without it) and the
real VGG19:

- ``cold``: every frame stylized on its own with the default schedule (from the photo);
- ``cold bB``: the same, then the temporal blend B (the video's behaviour before warm starts);
- ``warm k``: frame 0 as ``cold``, every later frame from ``M warp(O_{t-1}) + (1 - M) I_t``
  with ``k`` steps at the output's size (``stylize_optimize(..., init_image=...)``), blended
  as the video does (``--blends``: 0 = the warm start alone; the library's ``TemporalBlender``,
  DIS flow).

Per variant, over frames 1..T-1: ``Q`` the optimisation's objective (``common_measure`` of
``bench_optimize.py``: content + style; lower = better) relative to ``cold``, the style part
alone, ``E_warp`` (Lai et al. 2018, with the true flow), and the seconds per frame.

    python benchmarks/bench_video_warm.py --size 128 --frames 6 --warm 5 10 20 40 --blends 0 0.7
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from painterly.encoders import vgg19
from painterly.image import from_array, load_image
from painterly.stylizers.optimize import OptimizeOptions, stylize_optimize
from painterly.video import DEFAULT_BLEND, TemporalBlender, warping_error

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_optimize import common_measure  # noqa: E402
from bench_video import DATA, _np, _photo, _t, affine_clip  # noqa: E402


def _inputs(clip: str, size: int, frames: int, style_path: str | None):
    h, w = size * 3 // 4, size
    photo_path = DATA / "examples" / "content" / "golden_gate.jpg"
    if photo_path.exists():
        photo = _photo(photo_path, int(h * 1.6))
    else:  # no shared data: a photo bundled with scikit-image
        from painterly.demo import content_photo
        from painterly.image import resize

        img = content_photo("astronaut")
        photo = resize(img, (int(h * 1.6), int(h * 1.6)))[0].permute(1, 2, 0).numpy().astype(np.float32)
    default_style = DATA / "train" / "style" / "brushstrokes.jpg"
    if style_path:
        style = load_image(style_path).rgb
    elif default_style.exists():
        style = load_image(default_style).rgb
    else:
        from painterly.demo import swirl_style

        style = swirl_style(256)
    clip_frames, flows, masks = affine_clip(photo, h, w, frames, clip)
    return clip_frames, flows, masks, style


def _measure(outs, frames, flows, masks, style, options) -> tuple[float, float, float]:
    q, s = [], []
    for o, f in zip(outs[1:], frames[1:]):
        total, _, style_part = common_measure(_t(o), _t(f), style, options)
        q.append(total)
        s.append(style_part)
    ew = [warping_error(outs[t], outs[t - 1], flows[t], masks[t]) for t in range(1, len(outs))]
    return float(np.mean(q)), float(np.mean(s)), float(np.mean(ew))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128, help="clip width (height = 3/4 of it)")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--clip", choices=("pan", "zoom", "rotation", "shaky"), default="pan")
    p.add_argument("--warm", type=int, nargs="+", default=[5, 10, 20, 40], help="warm step counts to try")
    p.add_argument("--steps", type=int, default=100, help="steps of a cold frame (coarsest scale)")
    p.add_argument("--blends", type=float, nargs="+", default=[0.0, DEFAULT_BLEND],
                   help="temporal blends to try with the warm starts (0 = the warm start alone)")
    p.add_argument("--style", help="style image (default brushstrokes.jpg, or a procedural swirl)")
    args = p.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu}, {os.cpu_count()} cores")
    frames, flows, masks, style = _inputs(args.clip, args.size, args.frames, args.style)
    options = OptimizeOptions(device="cpu", seed=0, steps=args.steps)
    enc = vgg19(device="cpu")

    t0 = time.perf_counter()
    cold = [_np(stylize_optimize(_t(f), [style], options, encoder=enc)) for f in frames]
    cold_s = (time.perf_counter() - t0) / len(frames)
    variants = {"cold": (cold, cold_s)}
    for b in args.blends:
        if b > 0:
            blender = TemporalBlender(b)
            variants[f"cold b{b:g}"] = ([blender(f, s) for f, s in zip(frames, cold)], cold_s)
    for b in args.blends:
        for k in args.warm:
            warm_opts = OptimizeOptions(device="cpu", seed=0, steps=[k])
            blender = TemporalBlender(b)
            outs, t0 = [], time.perf_counter()
            for f in frames:
                init = blender.warm_start(f)
                if init is None:  # the first frame: the same as cold
                    styled = cold[0]
                else:
                    styled = _np(stylize_optimize(_t(f), [style], warm_opts, encoder=enc,
                                                  init_image=from_array(init)))
                outs.append(blender(f, styled))
            variants[f"warm {k} b{b:g}"] = (outs, (time.perf_counter() - t0) / max(1, len(frames) - 1))

    ref = None
    print(f"{args.clip} {args.size}x{args.size * 3 // 4}, {args.frames} frames, cold = {args.steps} steps from "
          f"the photo; warm k bB = k steps from the warped previous output, then blend B")
    print("variant          Q        dQ      style    dstyle    E_warp   dE_warp   s/frame")
    for name, (outs, sec) in variants.items():
        q, s, ew = _measure(outs, frames, flows, masks, style, options)
        ref = ref or (q, s, ew)
        print(f"{name:13s} {q:9.4g} {q / ref[0] - 1:+7.1%} {s:9.4g} {s / ref[1] - 1:+7.1%} "
              f"{ew:9.5f} {ew / ref[2] - 1:+7.0%} {sec:8.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
