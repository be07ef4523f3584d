"""``painterly tune``: teach a fast model's decoders to paint (see ``training/tune.py``).

Starts from a fast model (``--model slim`` by default) and trains its decoders, all levels at
once through the whole pipeline, on the content and style errors that optimisation minimises;
writes a model file that ``--model FILE`` runs like a built-in one.

Examples::

  painterly tune --content data/photos --style data/paintings --out runs/tuned --max-minutes 60
  painterly tune --content data/photos --style data/paintings --out runs/tuned --resume
  painterly stylize photo.jpg starry.jpg -o out.png --method fast --model runs/tuned/model.safetensors
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..clioptions import add_config_flags
from .common import add_run_flags, run_config

_SKIP = {"content_dir", "style_dir", "out_dir"}
_HELP = {
    "model": "the model to start from: a built-in name (slim, large) or a model file",
    "transform": "the feature transform the decoders learn to paint with (adain, wct, mixed)",
    "steps": "training steps", "batch_size": "photo/painting pairs per batch", "crop": "random crop size (multiple of 8)",
    "lr": "Adam learning rate", "style_weight": "weight of the style error (the content error's is 1)",
    "ramp_steps": "raise the style weight linearly from 0 over this many steps (0: full weight at once)",
    "identity_weight": "weight of the identity loss (a photo styled with itself must come back)",
    "temporal_weight": "weight of the stability loss: the picture of a photo moved a little (shift, turn, zoom) must be the "
                       "picture moved (video: strokes move with the scene)",
    "gan_weight": "weight of the PatchGAN adversarial loss against real paintings (0: off)",
    "gan_loss": "adversarial loss: hinge or nonsat", "disc_lr": "the discriminator's Adam learning rate",
    "hold_out": "comma-separated painting names (file stems) never trained on; validation uses them",
    "val_pairs": "fixed held-out pairs of the validation errors",
    "amp": "bf16 autocast where the CPU has it natively", "checkpoint_every": "checkpoint and model file every N steps",
    "log_every": "validation errors into metrics.csv every N steps",
    "max_minutes": "stop after this wall time, with a checkpoint (resume later with --resume)",
}


def add_parser(sub: Any) -> None:
    """Register ``tune`` on the command's subparsers."""
    from ..training.tune import TuneConfig

    p = sub.add_parser("tune", help="teach a fast model's decoders to paint (style losses through the pipeline)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    add_run_flags(p, "checkpoint, model file, metrics")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, TuneConfig, _SKIP, _HELP)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    """Tune (or resume); say where the model file is and its validation errors."""
    from ..stylizers.fast_model import check_model_arg
    from ..training.tune import TuneConfig, Tuner

    cfg = run_config(args, TuneConfig, _SKIP)
    check_model_arg(cfg.model)
    tuner = Tuner(cfg, resume=args.resume)
    val = tuner.fit(progress=not args.quiet)
    summary = ", ".join(f"{k[4:]} {v:.3f}" for k, v in val.items())
    print(f"tuned to step {tuner.step}; model: {Path(args.out) / 'model.safetensors'}"
          + (f" (validation error {summary})" if summary else ""))
    return 0
