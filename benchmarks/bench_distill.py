"""Distillation, measured: the student's per-level error over steps and s/step, and each level's
reconstruction PSNR through a model's decoders, on fixed held-in images.

    # a short distillation from scratch (pruned start), error every 50 steps
    python benchmarks/bench_distill.py distill --steps 300 --every 50 -o runs/bench-distill
    # reconstruction PSNR of every level of models (each level alone: decoder(encoder(photo)))
    python benchmarks/bench_distill.py psnr --models slim large

Data: ``../shared/data/train/`` (photos and paintings for the student; photos for the PSNR, the
first 8 at 256 px: held-in, since these numbers are about fitting, not generalising).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peers import DATA, cpu_name  # noqa: E402
from painterly import load_image  # noqa: E402
from painterly.image import fit_size, resize  # noqa: E402


def run_distill(args: argparse.Namespace) -> None:
    from painterly.training.distill import DistillConfig, Distiller

    cfg = DistillConfig(str(DATA / "train" / "content"), str(DATA / "train" / "style"), args.out,
                        width_divisor=args.width_divisor, steps=args.steps, log_every=args.every,
                        checkpoint_every=args.steps, lr=args.lr)
    d = Distiller(cfg, resume=Path(args.out, "checkpoint.safetensors").exists())
    print("step  s/step  " + "  ".join(f"{lv:>8s}" for lv in d.levels))
    print(f"{d.step:4d}  {'-':>6s}  " + "  ".join(f"{e:8.3f}" for e in d.errors().values()), flush=True)
    while d.step < cfg.steps:
        t0 = time.perf_counter()
        for _ in range(min(args.every, cfg.steps - d.step)):
            d.train_step()
        per = (time.perf_counter() - t0) / args.every
        print(f"{d.step:4d}  {per:6.2f}  " + "  ".join(f"{e:8.3f}" for e in d.errors().values()), flush=True)
    d.save_checkpoint()
    d.export_student()


@torch.no_grad()
def run_psnr(args: argparse.Namespace) -> None:
    from painterly.stylizers.fast import FastStylizer

    photos = sorted((DATA / "train" / "content").glob("*.jpg"))[:8]
    images = []
    for p in photos:
        x = load_image(p).rgb
        h, w = fit_size(*x.shape[-2:], size=256)
        images.append(resize(x, (h // 8 * 8, w // 8 * 8)))
    print("model       " + "  ".join(f"{lv:>8s}" for lv in ("relu4_1", "relu3_1", "relu2_1", "relu1_1")) + "  (PSNR dB)")
    for name in args.models:
        st = FastStylizer.from_model(name, "cpu")
        row = []
        for level in st.levels:
            psnr = []
            for x in images:
                y = st.decoders[level](st.encoder(x, [level])[level]).clamp(0, 1)
                psnr.append(float(-10 * torch.log10(F.mse_loss(y, x))))
            row.append(sum(psnr) / len(psnr))
        print(f"{Path(name).stem:10s}  " + "  ".join(f"{v:8.1f}" for v in row), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("distill")
    d.add_argument("-o", "--out", default="runs/bench-distill")
    d.add_argument("--steps", type=int, default=300)
    d.add_argument("--every", type=int, default=50)
    d.add_argument("--width-divisor", type=int, default=4)
    d.add_argument("--lr", type=float, default=1e-4)
    r = sub.add_parser("psnr")
    r.add_argument("--models", nargs="+", default=["slim", "large"])
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); CPU: {cpu_name()}")
    (run_distill if args.what == "distill" else run_psnr)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
