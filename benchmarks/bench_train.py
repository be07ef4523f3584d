"""How fast the decoder learns: PyTorch's default init vs Kaiming init + reconstruction warm-up.

Trains two relu4_1 decoders side by side in one run on this machine, with the same data, seed,
batch and learning rate:

- ``before``: ``--init default --warmup-steps 0`` (the trainer as it was: AdaIN losses from step 1);
- ``after``:  ``--init kaiming --warmup-steps W`` (reconstruction first, then the AdaIN losses).

Every ``--eval-every`` steps both are measured on fixed held-in pairs (centre crops of the first
training photos and paintings):
- reconstruction PSNR of ``D(E(c))`` against ``c`` (dB; can the decoder invert the encoder?);
- the AdaIN content and style losses of ``D(AdaIN(E(c), E(s)))`` (the trainer's normalised units).

It prints the table, then the steps and wall time each run needed to reach ``--psnr`` and the
``--content``/``--style`` targets ("never" if not within ``--steps``), and writes each run's
sample grid (photo | style | reconstruction | AdaIN output) beside ``--out``.

    python benchmarks/bench_train.py --steps 120 --out runs/bench_train
"""
from __future__ import annotations

import argparse
import math
import shutil
import time
from pathlib import Path

import torch

from painterly.training import TrainConfig, Trainer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


@torch.no_grad()
def evaluate(trainer: Trainer, content: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
    rec = trainer.reconstruction_losses(content)[1].float().clamp(0, 1)
    mse = float(((rec - content) ** 2).mean())
    losses = trainer.losses(content, style)[0]
    return {"psnr": 10 * math.log10(1.0 / max(mse, 1e-12)), "content": float(losses["content"]),
            "style": float(losses["style"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--warmup-steps", type=int, default=40, help="reconstruction steps of the 'after' run")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--style-weight", type=float, default=5.0)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--pairs", type=int, default=6, help="held-in evaluation pairs")
    p.add_argument("--psnr", type=float, default=16.0, help="reconstruction target, dB")
    p.add_argument("--content", type=float, default=3.0, help="AdaIN content loss target")
    p.add_argument("--style", type=float, default=1.0, help="AdaIN style loss target")
    p.add_argument("--out", default="runs/bench_train")
    args = p.parse_args()
    out = Path(args.out)
    runs = {"before": dict(init="default", warmup_steps=0), "after": dict(init="kaiming", warmup_steps=args.warmup_steps)}
    trainers, clocks = {}, {}
    for name, kw in runs.items():
        shutil.rmtree(out / name, ignore_errors=True)
        cfg = TrainConfig(str(DATA / "content"), str(DATA / "style"), str(out / name), steps=args.steps,
                          batch_size=args.batch_size, crop=args.crop, lr=args.lr, style_weight=args.style_weight,
                          amp=True, channels_last=False, seed=0, **kw)
        trainers[name] = Trainer(cfg)
        clocks[name] = 0.0
    first = trainers["before"]
    content = torch.cat([first.content.center(i, args.crop) for i in range(args.pairs)])
    style = torch.cat([first.style.center(i * 3, args.crop) for i in range(args.pairs)])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, crop {args.crop}, "
          f"lr {args.lr}, style weight {args.style_weight}, warm-up {args.warmup_steps}")
    print(f"{'step':>5s} " + " ".join(f"{n + ' ' + k:>16s}" for n in runs for k in ("psnr", "content", "style", "s/step")))
    reached: dict[tuple[str, str], tuple[int, float]] = {}
    for step in range(0, args.steps + 1, args.eval_every):
        row = [f"{step:5d}"]
        for name, tr in trainers.items():
            t0 = time.perf_counter()
            while tr.step < step:
                tr.train_step()
            dt = time.perf_counter() - t0
            clocks[name] += dt
            m = evaluate(tr, content, style)
            for key, ok in (("psnr", m["psnr"] >= args.psnr), ("content", m["content"] <= args.content),
                            ("style", m["style"] <= args.style)):
                if ok and (name, key) not in reached:
                    reached[(name, key)] = (step, clocks[name])
            row += [f"{m['psnr']:16.2f}", f"{m['content']:16.3f}", f"{m['style']:16.3f}",
                    f"{dt / max(1, args.eval_every if step else 1):16.2f}"]
        print(" ".join(row), flush=True)
    for name, tr in trainers.items():
        tr.samples = (content[:3], style[:3])
        grid = tr.write_samples()
        print(f"{name}: samples {grid}")
    for key, target in (("psnr", f">= {args.psnr} dB"), ("content", f"<= {args.content}"), ("style", f"<= {args.style}")):
        parts = []
        for name in runs:
            if (name, key) in reached:
                s, t = reached[(name, key)]
                parts.append(f"{name} step {s} ({t:.0f} s)")
            else:
                parts.append(f"{name} never in {args.steps} steps")
        print(f"{key} {target}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
