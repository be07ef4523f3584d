"""``painterly train --content DIR --style DIR --out RUN_DIR``: train a fast-mode decoder
(one flag per field of :class:`~painterly.training.TrainConfig`, generated)."""
from __future__ import annotations

import argparse
from typing import Any

from ..clioptions import add_config_flags
from .common import add_run_flags, run_config

HELP = {
    "student": "train on this slim student encoder file (a distilled 1/4-width VGG19) instead of the full VGG19; "
               "the model file then carries it",
    "steps": "training steps", "batch_size": "images per batch", "crop": "random crop size (multiple of 8)",
    "lr": "decoder learning rate", "lr_decay": "lr_t = lr / (1 + decay * t)",
    "content_weight": "content loss weight", "style_weight": "style loss weight",
    "style_loss": "meanstd (AdaIN) or gram", "tv_weight": "total variation weight",
    "decoder_width": "decoder channel multiplier", "gan_weight": "adversarial loss weight (> 0 turns it on)",
    "gan_loss": "hinge or nonsat", "disc_lr": "discriminator learning rate", "seed": "random seed",
    "device": "auto, cpu, cuda or mps", "amp": "bf16/fp16 autocast where it pays off",
    "channels_last": "channels-last memory format", "checkpoint_every": "steps between checkpoints",
    "sample_every": "steps between sample images", "log_every": "steps between metrics rows",
    "max_minutes": "stop (with a checkpoint) after this many minutes",
    "level": "encoder layer the decoder inverts: relu1_1, relu2_1, relu3_1 or relu4_1",
    "init": "decoder init: kaiming (recommended) or default (PyTorch's)",
    "warmup_steps": "reconstruction-only steps before the AdaIN losses (= --steps: a WCT decoder)",
    "pixel_weight": "weight of the reconstruction's pixel L1 term",
    "identity_weight": "identity (reconstruction) loss weight in the AdaIN phase (> 0 turns it on)",
}
SKIP = {"content_dir", "style_dir", "out_dir", "layer_scales"}
OVERRIDES = {"student": {"default_text": False}}


def add_parser(sub: Any) -> None:
    """Register ``train`` on the command's subparsers."""
    from ..training import TrainConfig

    p = sub.add_parser("train", help="train a feed-forward (AdaIN) decoder",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train the AdaIN decoder of --method fast. Writes checkpoint.safetensors, "
                                   "samples and metrics.csv into --out; --resume continues a run.")
    add_run_flags(p, "checkpoints, samples, metrics", content="folder of content photos", style="folder of style images")
    add_config_flags(p, TrainConfig, SKIP, HELP, OVERRIDES)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume) a run; a torchrun launch runs one of these per process."""
    from ..training import TrainConfig, Trainer

    cfg = run_config(args, TrainConfig, SKIP)
    with Trainer(cfg, resume=args.resume) as trainer:  # leaves a torchrun process group cleanly
        last = trainer.fit()
    summary = ", ".join(f"{k} {v:.4g}" for k, v in sorted(last.items()))
    print(f"training finished; run folder {args.out}" + (f" (last step: {summary})" if summary else ""))
    return 0
