"""Benchmark of the ONNX export: file sizes, accuracy against PyTorch, onnxruntime vs PyTorch time.

Prints, measured side by side in one run (one thread each by default):
- the export's file sizes (float32 and --fp16 weights) and how long the export took;
- max / mean absolute difference (RGB in [0, 1]) of the app graphs run by onnxruntime against
  ``stylize_fast`` in PyTorch, on real photos at 512^2 (../shared/data/examples/content when
  present, else scikit-image's photos) with paintings from ../shared/data/train/style;
- seconds per image at 512^2 and 1024^2 (median of --repeats after a warm-up): PyTorch
  ``stylize_fast``, the app graph ``stylizer.onnx`` (style statistics cached, as an app does),
  and the onnxruntime backend (``export.OnnxStylizer``: stylize_fast with both networks run by
  onnxruntime);
- with --int8: a statically quantised (QDQ, calibrated on a few photos) stylizer, its size,
  difference and time. Look at the PNGs it writes (--out) before trusting it.

The default model is the built-in one (four levels, AdaIN): the app graph runs the whole
cascade. ``--levels relu4_1`` exports and compares one level instead. The last part measures
the peak RSS of onnxruntime running the fp16 app graph alone, in a fresh process, at each size.

    python benchmarks/bench_onnx.py
    python benchmarks/bench_onnx.py --model ../shared/models/adain-v1/model.safetensors
    python benchmarks/bench_onnx.py --photos 2 --repeats 1 --out /tmp/onnx-bench --int8
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from painterly import export
from painterly.image import fit_size, from_array, load_image, resize, save_image
from painterly.stylizers.fast import FastOptions, stylize_fast

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
STYLES = ("nnst_S1.jpg", "aams_vangogh_harvest_sheaves.jpg", "aesust_cezanne_bay_of_marseille.jpg")


def photos(n: int) -> list[tuple[str, torch.Tensor]]:
    folder = DATA / "examples" / "content"
    files = sorted(folder.glob("*.jpg"))[:n] if folder.is_dir() else []
    if files:
        return [(f.stem, load_image(f).rgb) for f in files]
    from skimage import data

    return [(name, from_array(getattr(data, name)())) for name in ("astronaut", "chelsea", "coffee", "rocket")[:n]]


def paintings(n: int) -> list[tuple[str, torch.Tensor]]:
    folder = DATA / "train" / "style"
    files = [folder / s for s in STYLES if (folder / s).is_file()] or sorted(folder.glob("*.jpg"))[:n]
    if files:
        return [(f.stem, load_image(f).rgb) for f in files[:n]]
    from painterly.demo import swirl_style

    return [("swirls", swirl_style(512))]


def square(img: torch.Tensor, side: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    s = min(h, w)
    img = img[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return resize(img, (side, side)).clamp(0, 1)


def style_input(style: torch.Tensor) -> torch.Tensor:
    """What stylize_fast feeds its encoder: longest side 512 (no padding: the graph pads)."""
    h, w = style.shape[-2:]
    return resize(style, fit_size(h, w, size=512)).clamp(0, 1) if max(h, w) > 512 else style


def session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_app(enc, stylizer, content: torch.Tensor, style: torch.Tensor) -> np.ndarray:
    stats = enc.run(None, {"style": style_input(style).numpy()})[0]
    return stylizer.run(None, {"content": content.numpy(), "statistics": stats,
                               "alpha": np.array([1.0], np.float32)})[0]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def quantize_int8(src: Path, dst: Path, enc, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    feeds = [{"content": square(c, 256).numpy(), "alpha": np.array([1.0], np.float32),
              "statistics": enc.run(None, {"style": style_input(s).numpy()})[0]} for c, s in pairs]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    pre.unlink()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file (default: the built-in four-level model)")
    p.add_argument("--levels", nargs="+", help="levels to export and compare (default: every level)")
    p.add_argument("--photos", type=int, default=4, help="photos for the accuracy part (default 4)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per size after a warm-up (default 2)")
    p.add_argument("--threads", type=int, default=1, help="threads for both runtimes (default 1)")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--int8", action="store_true", help="also try a statically quantised int8 stylizer")
    p.add_argument("--out", help="folder for the exports and the PNGs to look at (default: a temp folder)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-onnx-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {os.cpu_count()} cores visible, {args.threads} thread(s) per runtime; files in {out}")

    folders = {}
    for name, fp16 in (("fp32", False), ("fp16", True)):
        folder = out / f"export-{name}"
        r = export.export_onnx(folder, args.model, fp16=fp16, overwrite=True, levels=args.levels)
        folders[name] = folder
        sizes = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in r.files.items() if k.endswith(".onnx"))
        print(f"export {name}: {sizes} (export {r.seconds:.1f} s)")

    sess = {k: (session(f / "style_encoder.onnx", args.threads), session(f / "stylizer.onnx", args.threads))
            for k, f in folders.items()}
    pics, arts = photos(args.photos), paintings(max(1, min(3, args.photos)))
    pairs = [(pic, arts[i % len(arts)][1]) for i, (_, pic) in enumerate(pics)]
    if args.int8:
        q = out / "stylizer-int8.onnx"
        quantize_int8(folders["fp32"] / "stylizer.onnx", q, sess["fp32"][0], pairs)
        sess["int8"] = (sess["fp32"][0], session(q, args.threads))
        print(f"int8 stylizer: {q.stat().st_size / 1e6:.1f} MB")

    print("\naccuracy at 512^2 against PyTorch stylize_fast (RGB in [0, 1]):")
    diffs: dict[str, list[tuple[float, float]]] = {k: [] for k in sess}
    for i, (pic, style) in enumerate(pairs):
        content = square(pic, 512)
        ref = stylize_fast(content, [style], FastOptions(device="cpu", model=args.model, levels=args.levels))
        if i == 0:
            save_image(content, out / "content.png", overwrite=True)
            save_image(ref, out / "pytorch.png", overwrite=True)
        for k, (enc, sty) in sess.items():
            got = torch.from_numpy(run_app(enc, sty, content, style))
            d = (got - ref).abs()
            diffs[k].append((float(d.max()), float(d.mean())))
            if i == 0:
                save_image(got, out / f"onnx-{k}.png", overwrite=True)
    for k, v in diffs.items():
        print(f"  {k}: max {max(a for a, _ in v):.2e}, mean {statistics.mean(b for _, b in v):.2e} "
              f"({len(v)} photos)")

    print(f"\nseconds per image ({args.threads} thread(s), median of {args.repeats}; PyTorch caches the style "
          f"statistics too):")
    style = pairs[0][1]
    backend = export.OnnxStylizer(args.model, threads=args.threads)
    for side in args.sizes:
        content = square(pics[0][1], side)
        opts = FastOptions(device="cpu", model=args.model, levels=args.levels)
        row = {"pytorch": timed(lambda: stylize_fast(content, [style], opts), args.repeats),
               "onnx backend": timed(lambda: backend(content, [style], opts), args.repeats)}
        for k, (enc, sty) in sess.items():
            stats = enc.run(None, {"style": style_input(style).numpy()})[0]
            feed = {"content": content.numpy(), "statistics": stats, "alpha": np.array([1.0], np.float32)}
            row[f"app {k}"] = timed(lambda: sty.run(None, feed), args.repeats)
        print(f"  {side}^2: " + ", ".join(f"{k} {v:.2f} s" for k, v in row.items()))
    print("\npeak RSS of onnxruntime running the fp16 app graph alone (a fresh process per size):")
    for side in args.sizes:
        print(f"  {side}^2: {peak_rss(folders['fp16'], side, args.threads):.2f} GB")
    return 0


RSS_CHILD = """
import sys
import numpy as np, onnxruntime as ort
folder, side, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
o = ort.SessionOptions(); o.intra_op_num_threads = threads
enc = ort.InferenceSession(folder + "/style_encoder.onnx", o, providers=["CPUExecutionProvider"])
sty = ort.InferenceSession(folder + "/stylizer.onnx", o, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
stats = enc.run(None, {"style": rng.random((1, 3, 512, 512), np.float32)})[0]
sty.run(None, {"content": rng.random((1, 3, side, side), np.float32), "statistics": stats,
               "alpha": np.ones(1, np.float32)})
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def peak_rss(folder: Path, side: int, threads: int) -> float:
    """Peak resident memory (GB) of a process that loads the graphs and stylizes one side^2 image."""
    proc = subprocess.run([sys.executable, "-c", RSS_CHILD, str(folder), str(side), str(threads)],
                          capture_output=True, text=True, check=True)
    # VmHWM (KiB): the peak of this process alone; ru_maxrss would start from the parent's peak
    return int(proc.stdout.split()[-1]) / 1e6


if __name__ == "__main__":
    sys.exit(main())
