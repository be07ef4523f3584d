"""Benchmark of ``painterly batch``: images/s embedded vs on a local Ray, and peak memory.

For each size (default 256^2 and 512^2, ImageNet-sized photos) it writes ``--images`` photos
(scikit-image's photos, cropped/resized to the size) and one painting into a temporary folder,
then times, on this machine:

- **embedded**: ``painterly.batch`` in this process (the model loaded once, ``--workers``
  threads; default one per core), model load included and excluded;
- **ray**: the same batch on a local Ray (``ray.init(num_cpus=cores)``, one actor per core,
  ``--batch-size``), with Ray's start-up (``ray.init``) timed apart and the actors' model loads
  inside the batch time: what a user waits for. Skipped when Ray Data is not installed.

Peak RSS: of this process for embedded (it holds everything); of each Ray actor (``VmHWM`` of
the ``ray::MapWorker`` processes, read before Ray shuts down). Outputs of both runners are
compared (max pixel difference).

    python benchmarks/bench_batch.py                          # default model, 256 and 512, 8 images
    python benchmarks/bench_batch.py --sizes 256 --images 4 --model slim
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _photos(folder: Path, n: int, side: int) -> None:
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    folder.mkdir(parents=True)
    for i in range(n):
        img = Image.fromarray(sources[i % len(sources)])
        w, h = img.size
        crop = img.crop((i % 7, i % 5, w - i % 3, h - i % 4)).resize((side, side * 3 // 4), Image.BICUBIC)
        sub = folder / f"n{i % 3}"  # a nested tree, as ImageNet's class folders
        sub.mkdir(exist_ok=True)
        crop.save(sub / f"img{i:04d}.jpg", quality=92)


def _style(path: Path) -> None:
    from painterly.demo import swirl_style
    from painterly.image import to_pil

    to_pil(swirl_style(512)).save(path)


def _actor_peaks() -> list[int]:
    peaks = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if not cmd.startswith(b"ray::MapWorker"):
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) * 1024)
        except OSError:
            continue
    return peaks


def bench(side: int, args) -> dict:
    import torch

    import painterly as st
    from painterly.batch.options import available_cores
    from painterly.stylizers.fast import FastStylizer

    cores = args.cores or available_cores()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    _photos(tmp / "in", args.images, side)
    _style(tmp / "style.png")
    row: dict = {"size": f"{side}x{side * 3 // 4}", "images": args.images, "cores": cores,
                 "torch": torch.__version__}
    torch.set_num_threads(cores)
    workers = args.workers or cores
    t0 = time.perf_counter()
    stylizer = FastStylizer.from_model(args.model, "cpu")
    load = time.perf_counter() - t0
    opts = dict(size=side, model=args.model)
    t1 = time.perf_counter()
    rep = st.batch(tmp / "in", tmp / "embedded", tmp / "style.png", stylizer=stylizer, workers=workers, **opts)
    run = time.perf_counter() - t1
    row["embedded"] = {"model_load_s": round(load, 2), "batch_s": round(run, 2),
                       "images_per_s": round(rep.done / run, 3),
                       "images_per_s_with_load": round(rep.done / (run + load), 3),
                       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    if not args.skip_ray:
        try:
            import ray
        except ImportError:
            row["ray"] = "skipped: ray is not installed (pip install 'painterly[ray]')"
            return row
        t2 = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR")
        init = time.perf_counter() - t2
        try:
            t3 = time.perf_counter()
            rep = st.batch(tmp / "in", tmp / "ray", tmp / "style.png", ray=True, actors=args.actors or cores,
                           batch_size=args.batch_size, **opts)
            run = time.perf_counter() - t3
            peaks = _actor_peaks()
        finally:
            ray.shutdown()
        diffs = [np.abs(np.asarray(Image.open(p), np.int16)
                        - np.asarray(Image.open(tmp / "embedded" / p.relative_to(tmp / "ray")), np.int16)).max()
                 for p in (tmp / "ray").rglob("*.jpg")]
        row["ray"] = {"ray_init_s": round(init, 2), "batch_s": round(run, 2),
                      "images_per_s": round(rep.done / run, 3),
                      "peak_rss_mb_per_actor": [p // 2 ** 20 for p in peaks],
                      "max_pixel_diff_vs_embedded": int(max(diffs)) if diffs else None}
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--model", default=None, help="model file or built-in name (default: the default model)")
    p.add_argument("--workers", type=int, default=None, help="embedded threads (default: one per core)")
    p.add_argument("--actors", type=int, default=None, help="Ray actors (default: one per core)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--cores", type=int, default=None,
                   help="cores to use (torch threads, Ray CPUs; default: all this process may use)")
    p.add_argument("--skip-ray", action="store_true")
    args = p.parse_args()
    for side in args.sizes:
        print(json.dumps(bench(side, args)), flush=True)


if __name__ == "__main__":
    main()
