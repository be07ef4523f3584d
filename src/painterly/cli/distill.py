"""``painterly distill``: train the slim student encoder of the fast mode (see
``training/distill.py``), then its decoders with ``painterly train --student``.

Examples::

  painterly distill --content data/photos --style data/paintings --out runs/student --max-minutes 60
  painterly distill --content data/photos --style data/paintings --out runs/student --resume
  painterly train --content data/photos --style data/paintings --out runs/slim-relu4_1 \\
      --student runs/student/student.safetensors --level relu4_1 --decoder-width 0.25 \\
      --steps 4000 --warmup-steps 4000 --batch-size 8 --crop 128
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..clioptions import add_config_flags
from .common import add_run_flags, run_config

_SKIP = {"content_dir", "style_dir", "out_dir"}
_HELP = {
    "width_divisor": "divide every width of VGG19 by this (4: 16-32-64-128 channels, 1/16 of the cost)",
    "steps": "training steps", "batch_size": "crops per batch (half photos, half paintings)",
    "crop": "random crop size (multiple of 8)", "lr": "Adam learning rate (1e-4 measured best)",
    "checkpoint_every": "write the checkpoint and student.safetensors every N steps",
    "log_every": "validation errors into metrics.csv every N steps", "val_size": "crops in the validation batch",
    "max_minutes": "stop after this wall time, with a checkpoint (resume later with --resume)",
}


def add_parser(sub: Any) -> None:
    """Register ``distill`` on the command's subparsers."""
    from ..training.distill import DistillConfig

    p = sub.add_parser("distill", help="distil the slim student encoder of the fast mode",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__)
    add_run_flags(p, "checkpoint, student, metrics")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, DistillConfig, _SKIP, _HELP)
    p.set_defaults(func=cmd_distill)


def cmd_distill(args: argparse.Namespace) -> int:
    """Distil (or resume) the student; say where it is and its validation error."""
    from ..training.distill import DistillConfig, Distiller

    cfg = run_config(args, DistillConfig, _SKIP)
    distiller = Distiller(cfg, resume=args.resume)
    errs = distiller.fit(progress=not args.quiet)
    summary = ", ".join(f"{k[4:]} {v:.3f}" for k, v in errs.items())
    print(f"distilled to step {distiller.step}; student: {Path(args.out) / 'student.safetensors'}"
          + (f" (validation error {summary})" if summary else ""))
    return 0
