"""Benchmark of ``painterly video``: temporal consistency (per-frame vs temporal) and speed.

Clips with *known* motion are made from the photos in ``../shared/data/examples/content/``:
pan, zoom, rotation (an affine camera over a photo), a moving object (a disc cut from a
second photo sliding over a slowly panning first one) and "shaky" (a hand-held camera's random
walk of position, angle and zoom, with exposure drift and sensor noise). Their true flow and occlusions are
known, so the measure needs no flow estimation, while the stylizer only sees the frames and
estimates flow itself (DIS), as it does on real clips.

For each clip every frame is stylized once with the fast method (per-frame = ``S_t``), then:

- ``output b``: the library's blend ``O_t = S_t + b feather(M) (warp(O_{t-1}) - S_t)`` with its
  detail restoration (``TemporalBlender``, ``painterly.video.detail``);
- ``plain b`` (``--plain``): the same blend without the detail restoration (``--no-detail``);
- ``feat b``: the same blend on the AdaIN target features at relu4_1 (flow and mask at 1/8
  resolution), then decoded: an alternative we measured and did not ship (docs/video.md).

Measures (mean over frames):
- ``E_warp`` (Lai et al. 2018): mean over non-occluded pixels of ||O_t - warp(O_{t-1})||^2, RGB in
  [0, 1], with the true flow; ``|d|``: the same with the mean absolute difference per channel;
- ``style``, ``content``: the two parts of the project's common measure (``common_measure`` of
  ``benchmarks/bench_optimize.py``, the optimisation's own objective: Gram style loss at
  relu1_1..relu5_1 against the style at the frame's area, content MSE at relu4_2 against the
  input frame; lower = closer). The input frames' row shows how far an unstylized frame is.

Per-frame and the output blends stylize with every level of the model, as the CLI does (the
built-in model: four); the feature blend works at relu4_1 alone. Then frames/s of the whole ``stylize_video`` (decode, stylize, flow, blend, encode) at 512 px,
with the model's levels as the CLI runs them (the built-in model: four) and with relu4_1 alone.

    python benchmarks/bench_video.py --model ../shared/models/adain-v1/model.safetensors
    python benchmarks/bench_video.py --clips --speed-frames 8          # speed only, built-in model
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from painterly.encoders import vgg19
from painterly.image import fit_size, from_array, load_image, resize, save_image
from painterly.stylizers.optimize import OptimizeOptions
from painterly.stylizers.fast import (
    FastOptions, _pad_to, decode_tiled, encode_tiled, read_model, style_statistics, stylize_fast, target_features,
)
from painterly.video import FlowEstimator, TemporalBlender, VideoOptions, stylize_video, warp, warping_error

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_optimize import common_measure  # noqa: E402  the project's content + style measure

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ----- clips with known motion -------------------------------------------------------------------

def _photo(path: Path, short_side: int) -> np.ndarray:
    img = load_image(path).rgb
    h, w = img.shape[-2:]
    f = short_side / min(h, w)
    img = resize(img, (round(h * f), round(w * f)))
    return img[0].permute(1, 2, 0).numpy().astype(np.float32)


def _sample(photo: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.remap(photo, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT).clip(0, 1)


def affine_clip(photo: np.ndarray, h: int, w: int, frames: int, kind: str):
    """Camera motion over a photo: frame t shows photo(A_t x + b_t). Returns frames, flows, masks.

    ``flows[t]`` maps frame t -> t-1 (x' = A_{t-1}^{-1}(A_t x + b_t - b_{t-1})), ``masks[t]`` is 1
    where x' falls inside frame t-1 (elsewhere the content is new).
    """
    ph, pw = photo.shape[:2]
    cy, cx = ph / 2, pw / 2

    rng = np.random.default_rng(7)
    shake = np.cumsum(rng.normal(0, 1, (frames, 4)) * [1.5, 1.5, 0.4, 0.006], axis=0)  # x, y px; deg; log zoom

    def params(t: int) -> tuple[np.ndarray, np.ndarray]:
        if kind == "shaky":  # hand-held: a random walk of position, angle and zoom
            a, s = math.radians(shake[t, 2]), math.exp(shake[t, 3])
            m = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            return m, np.array([cx + shake[t, 0], cy + shake[t, 1]]) - m @ np.array([w / 2, h / 2])
        if kind == "pan":
            return np.eye(2), np.array([cx - w / 2 + 2.6 * t - 20, cy - h / 2 + 0.9 * t - 8])
        if kind == "zoom":
            s = 1.025 ** (-t)  # zoom in: the photo area seen shrinks
        else:
            s = 1.0
        a = math.radians(1.5 * t) if kind == "rotation" else 0.0
        m = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        # keep the frame centre on the photo centre: b = c_photo - A c_frame
        return m, np.array([cx, cy]) - m @ np.array([w / 2, h / 2])

    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pts = np.stack([gx, gy], -1)
    out, flows, masks = [], [None], [None]
    for t in range(frames):
        a, b = params(t)
        src = pts @ a.T + b
        frame = _sample(photo, src[..., 0], src[..., 1])
        if kind == "shaky":  # and a camera's exposure drift and sensor noise
            frame = frame * (1 + 0.03 * math.sin(t / 3)) + rng.normal(0, 0.015, frame.shape).astype(np.float32)
        out.append(frame.clip(0, 1).astype(np.float32))
        if t:
            a0, b0 = params(t - 1)
            prev = (src - b0) @ np.linalg.inv(a0).T
            flows.append((prev - pts).astype(np.float32))
            inside = (prev[..., 0] >= 0) & (prev[..., 0] <= w - 1) & (prev[..., 1] >= 0) & (prev[..., 1] <= h - 1)
            masks.append(inside.astype(np.float32))
    return out, flows, masks


def object_clip(background: np.ndarray, obj: np.ndarray, h: int, w: int, frames: int):
    """A disc cut from ``obj`` moving (5, 2.5) px/frame over a background panning 1 px/frame."""
    r = min(h, w) * 0.22
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    oh, ow = obj.shape[:2]
    out, flows, masks, inside_obj = [], [None], [None], []
    for t in range(frames):
        bx, by = 30 + 1.0 * t, 20.0
        ox, oy = w * 0.2 + 5.0 * t, h * 0.3 + 2.5 * t
        bg = _sample(background, gx + bx, gy + by)
        fg = _sample(obj, gx - ox + ow / 2, gy - oy + oh / 2)
        d = np.sqrt((gx - ox) ** 2 + (gy - oy) ** 2)
        alpha = np.clip(r - d + 0.5, 0, 1)[..., None]  # anti-aliased edge
        out.append((alpha * fg + (1 - alpha) * bg).astype(np.float32))
        inside_obj.append(d < r)
        if t:
            fx = np.where(d < r, -5.0, 1.0)
            fy = np.where(d < r, -2.5, 0.0)
            flow = np.stack([fx, fy], -1).astype(np.float32)
            px, py = gx + fx, gy + fy
            d_prev = np.sqrt((px - (ox - 5.0)) ** 2 + (py - (oy - 2.5)) ** 2)
            same_layer = (d < r) == (d_prev < r)  # background covered by the disc at t-1: occluded
            edge = np.abs(d - r) < 2.0  # anti-aliased rim: a mix of both layers, no single flow
            edge_prev = np.abs(d_prev - r) < 2.0
            inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
            masks.append((same_layer & ~edge & ~edge_prev & inside).astype(np.float32))
            flows.append(flow)
    return out, flows, masks


# ----- stylization variants ----------------------------------------------------------------------

def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()


def _np(img: torch.Tensor) -> np.ndarray:
    return img[0].permute(1, 2, 0).numpy().astype(np.float32)


def per_frame(frames, style, enc, dec, transform: str | None = None) -> list[np.ndarray]:
    opts = FastOptions(device="cpu", transform=transform)  # dec: {level: decoder}, every level of the model
    return [_np(stylize_fast(_t(f), [style], opts, encoder=enc, decoder=dec)) for f in frames]


def output_blend(frames, stylized, beta: float, cubic: bool = True, detail: bool = True) -> list[np.ndarray]:
    blender = TemporalBlender(beta, cubic=cubic, detail=detail)
    return [blender(f, s) for f, s in zip(frames, stylized)]


@torch.no_grad()
def feature_blend(frames, style, enc, dec, beta: float) -> list[np.ndarray]:
    """Blend the warped previous AdaIN target into the current one at relu4_1, then decode."""
    flow_est = FlowEstimator()
    stats = [style_statistics(enc, style)]
    out, prev_t, prev_f = [], None, None
    for f in frames:
        x, (h, w) = _pad_to(_t(f), 8)
        tgt = target_features(encode_tiled(enc, x, 4096), stats, [1.0], None, 1.0)
        if prev_t is not None:
            flow, valid = flow_est(f, prev_f)
            fh, fw = tgt.shape[-2:]
            flow = np.pad(flow, ((0, x.shape[-2] - h), (0, x.shape[-1] - w), (0, 0)), mode="edge")
            valid = np.pad(valid, ((0, x.shape[-2] - h), (0, x.shape[-1] - w)), mode="edge")
            flow8 = F.avg_pool2d(_t(flow), 8)[0].permute(1, 2, 0).numpy() / 8
            valid8 = (F.avg_pool2d(torch.from_numpy(valid)[None, None], 8) > 0.99).float()
            gy, gx = torch.meshgrid(torch.arange(fh), torch.arange(fw), indexing="ij")
            sx = (gx + torch.from_numpy(flow8[..., 0])) / max(fw - 1, 1) * 2 - 1
            sy = (gy + torch.from_numpy(flow8[..., 1])) / max(fh - 1, 1) * 2 - 1
            warped = F.grid_sample(prev_t, torch.stack([sx, sy], -1)[None].float(), align_corners=True,
                                   padding_mode="border")
            tgt = tgt + beta * valid8 * (warped - tgt)
        prev_t, prev_f = tgt, f
        out.append(_np(decode_tiled(dec, tgt, 4096)[..., :h, :w].clamp(0, 1)))
    return out


# ----- measures ----------------------------------------------------------------------------------

def measures(outputs, frames, flows, masks, style, every: int = 1) -> dict[str, float]:
    ew = [warping_error(outputs[t], outputs[t - 1], flows[t], masks[t]) for t in range(1, len(outputs))]
    ad = []
    for t in range(1, len(outputs)):
        d = np.abs(outputs[t] - warp(outputs[t - 1], flows[t])).mean(-1)
        ad.append(float((d * masks[t]).sum() / masks[t].sum()))
    st, ct = [], []
    for o, f in list(zip(outputs, frames))[1::every]:  # the first frame is per-frame in every variant
        _, c, s = common_measure(_t(o), _t(f), style, OptimizeOptions())
        st.append(s)
        ct.append(c)
    return {"ewarp": float(np.mean(ew)), "absdiff": float(np.mean(ad)), "style": float(np.mean(st)),
            "content": float(np.mean(ct))}


def _write_clip(path: Path, frames: list[np.ndarray], fps: int = 24) -> None:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt, s.options = "yuv420p", {"crf": "12"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray((f * 255 + 0.5).astype(np.uint8), format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def speed(photo: np.ndarray, style: torch.Tensor, model: str | None, side: int, n: int, enc) -> dict[str, float]:
    """frames/s of the whole stylize_video at side x side: per-frame and temporal with every level
    of the model, and temporal with relu4_1 alone."""
    frames, _, _ = affine_clip(photo, side, side, n, "pan")
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.mp4"
        _write_clip(src, frames)
        for name, temporal, levels in (("per-frame", False, None), ("temporal", True, None),
                                       ("temporal relu4_1 only", True, ["relu4_1"])):
            opts = VideoOptions(fast=FastOptions(device="cpu", model=model, levels=levels), temporal=temporal)
            t0 = time.perf_counter()
            r = stylize_video(src, [style], Path(tmp) / f"out{len(res)}.mp4", opts, encoder=enc)
            res[name] = r.frames / (time.perf_counter() - t0)
        # the parts: flow + blend alone
        blender = TemporalBlender()
        t0 = time.perf_counter()
        for f in frames:
            blender(f, f)
        res["flow+blend s/frame"] = (time.perf_counter() - t0) / n
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file (default: the built-in model)")
    p.add_argument("--style", default=str(DATA / "train" / "style" / "brushstrokes.jpg"))
    p.add_argument("--size", type=int, default=256, help="clip width (height = 3/4 of it)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--blends", type=float, nargs="+", default=[0.5, 0.7, 0.85])
    p.add_argument("--feature-blend", type=float, default=0.7, help="0 = skip the feature-blend variant")
    p.add_argument("--clips", nargs="*", default=["pan", "zoom", "rotation", "object", "shaky"])
    p.add_argument("--speed-size", type=int, default=512)
    p.add_argument("--speed-frames", type=int, default=6, help="0 = skip the speed part")
    p.add_argument("--save", help="folder for a few frames of each variant (PNG)")
    p.add_argument("--cache", help="folder to keep the per-frame stylizations in (re-runs only blend)")
    p.add_argument("--measure-every", type=int, default=3, help="style/content measure on every N-th frame")
    p.add_argument("--linear", action="store_true", help="also blend with bilinear warps (default bicubic)")
    p.add_argument("--plain", action="store_true", help="also the blend without detail restoration (--no-detail)")
    args = p.parse_args()
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu}, {os.cpu_count()} cores")
    fm = read_model(args.model)
    enc = fm.encoder if fm.encoder is not None else vgg19(device="cpu")  # a slim model carries its own
    decs = fm.decoders  # per-frame and output blends: every level, as the CLI
    dec = decs["relu4_1"]  # the feature-blend variant works at relu4_1
    style = load_image(args.style).rgb
    w, h = args.size, args.size * 3 // 4
    content_dir = DATA / "examples" / "content"
    photos = {"pan": "golden_gate.jpg", "zoom": "tubingen.jpg", "rotation": "sailboat.jpg", "object": "newyork.jpg",
              "shaky": "hoovertowernight.jpg"}
    rows = []
    for clip in args.clips:
        photo = _photo(content_dir / photos[clip], int(h * 1.6))
        if clip == "object":
            frames, flows, masks = object_clip(photo, _photo(content_dir / "flowers.jpg", h), h, w, args.frames)
        else:
            frames, flows, masks = affine_clip(photo, h, w, args.frames, clip)
        cache = Path(args.cache) / f"{clip}_{w}_{args.frames}_{Path(args.style).stem}.npy" if args.cache else None
        t0 = time.perf_counter()
        if cache is not None and cache.exists():
            base = list(np.load(cache))
        else:
            base = per_frame(frames, style, enc, decs, fm.transform)  # the model's own, as the CLI
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache, np.stack(base))
        sec = (time.perf_counter() - t0) / len(frames)
        variants = {"input": frames, "per-frame": base}
        for b in args.blends:
            variants[f"output {b:g}"] = output_blend(frames, base, b)
            if args.plain:
                variants[f"plain {b:g}"] = output_blend(frames, base, b, detail=False)
            if args.linear:
                variants[f"linear {b:g}"] = output_blend(frames, base, b, cubic=False, detail=False)
        if args.feature_blend > 0:
            variants[f"feat {args.feature_blend:g}"] = feature_blend(frames, style, enc, dec, args.feature_blend)
        ref = None
        for name, outs in variants.items():
            m = measures(outs, frames, flows, masks, style, args.measure_every)
            if name == "per-frame":
                ref = m
            rel = (f"{m['ewarp'] / ref['ewarp'] - 1:+7.0%} {m['style'] / ref['style'] - 1:+7.1%}"
                   if ref and name != "per-frame" else " " * 15)
            rows.append(f"{clip:9s} {name:11s} {m['ewarp']:9.5f} {m['absdiff']:8.4f} {m['style']:9.4g} "
                        f"{m['content']:9.4g} {rel}")
            print(rows[-1] + (f"   ({sec:.2f} s/frame stylize, {w}x{h})" if name == "per-frame" else ""), flush=True)
            if args.save and name != "input":
                d = Path(args.save)
                d.mkdir(parents=True, exist_ok=True)
                for t in (args.frames // 2, args.frames // 2 + 1):
                    save_image(_t(outs[t]), d / f"{clip}_{name.replace(' ', '')}_{t:02d}.png", overwrite=True)
    if rows:
        print("clip      variant       E_warp    |diff|     style   content  dE_warp  dstyle  (vs per-frame)")
        print("\n".join(rows))
    if args.speed_frames:
        photo = _photo(content_dir / "golden_gate.jpg", int(args.speed_size * 1.3))
        own = fm.encoder is not None  # a slim model carries its own encoder: stylize_video takes none then
        res = speed(photo, style, args.model, args.speed_size, args.speed_frames, None if own else enc)
        print(f"stylize_video {args.speed_size}x{args.speed_size}, {args.speed_frames} frames: "
              + ", ".join(f"{k} {v:.3f}" + ("" if "s/frame" in k else " frames/s") for k, v in res.items()))


if __name__ == "__main__":
    sys.exit(main())
