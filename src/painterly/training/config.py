"""The options of ``painterly train`` (:class:`TrainConfig`) and the layers a decoder trains on."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import StyleTransferError
from ..models.decoder import LEVELS

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
# Options that change the decoder's shape or the networks trained: resuming with others is an error.
ARCH_FIELDS = ("level", "decoder_width", "student")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_flags(cfg: Any, *, at_least_one: Sequence[str] = (), positive: Sequence[str] = (),
                non_negative: Sequence[str] = ()) -> None:
    """The range checks of a training config (``TrainConfig``, ``DistillConfig``, ``TuneConfig``),
    each failure one line naming the flag: ``--batch-size must be >= 1, got 0``. A ``crop`` among
    ``at_least_one`` must also be a multiple of 8 (the encoder's pooling grid)."""
    for name in at_least_one:
        if getattr(cfg, name) < 1:
            raise StyleTransferError(f"{_flag(name)} must be >= 1, got {getattr(cfg, name)}")
    if "crop" in at_least_one and cfg.crop % 8:
        raise StyleTransferError(f"--crop must be a multiple of 8, got {cfg.crop}")
    for name in positive:
        if not getattr(cfg, name) > 0:
            raise StyleTransferError(f"{_flag(name)} must be > 0, got {getattr(cfg, name)}")
    for name in non_negative:
        if getattr(cfg, name) < 0:
            raise StyleTransferError(f"{_flag(name)} must be >= 0, got {getattr(cfg, name)}")


@dataclass
class TrainConfig:
    """Options of ``painterly train`` (every field is a CLI flag)."""

    content_dir: str
    style_dir: str
    out_dir: str
    steps: int = 5000
    batch_size: int = 4
    crop: int = 192
    lr: float = 5e-4
    lr_decay: float = 2e-4  # lr_t = lr / (1 + lr_decay * t), as in the AdaIN reference code
    content_weight: float = 1.0
    style_weight: float = 10.0
    style_loss: str = "meanstd"  # or "gram" (the seed's Gram / C^2 loss)
    tv_weight: float = 0.0
    decoder_width: float = 1.0
    level: str = "relu4_1"  # the encoder layer the decoder inverts (relu1_1 .. relu4_1)
    student: str = ""  # a slim student encoder file (``train distill``) to train on instead of the full VGG19
    init: str = "kaiming"  # or "default" (PyTorch's; starves a deep decoder, see models/decoder.py)
    warmup_steps: int = 0  # reconstruction-only steps first; = steps for a WCT (reconstruction) decoder
    pixel_weight: float = 10.0  # weight of the pixel L1 term of the reconstruction loss
    identity_weight: float = 0.0  # > 0 adds the identity (reconstruction) loss to the AdaIN phase
    gan_weight: float = 0.0  # > 0 turns the adversarial loss on
    gan_loss: str = "hinge"
    disc_lr: float = 2e-4
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CPUs with native bf16, fp16 on CUDA
    channels_last: bool = False  # measured here: training steps 6.6 s (contiguous) vs 7.4 s
    checkpoint_every: int = 100
    sample_every: int = 200
    log_every: int = 10
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time
    layer_scales: dict[str, float] = field(default_factory=dict)  # measured at the first start

    def validate(self) -> None:
        check_flags(self, at_least_one=("steps", "batch_size", "crop", "checkpoint_every", "sample_every", "log_every"),
                    positive=("lr", "content_weight", "style_weight", "decoder_width", "disc_lr"),
                    non_negative=("lr_decay", "tv_weight", "gan_weight", "warmup_steps", "pixel_weight",
                                  "identity_weight"))
        if self.style_loss not in ("meanstd", "gram"):
            raise StyleTransferError(f"--style-loss must be meanstd or gram, got {self.style_loss!r}")
        if self.gan_loss not in ("hinge", "nonsat"):
            raise StyleTransferError(f"--gan-loss must be hinge or nonsat, got {self.gan_loss!r}")
        if self.level not in LEVELS:
            raise StyleTransferError(f"--level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.init not in ("kaiming", "default"):
            raise StyleTransferError(f"--init must be kaiming or default, got {self.init!r}")


def style_layers(level: str) -> tuple[str, ...]:
    """The style (and reconstruction feature) layers of a decoder at ``level``: relu1_1 .. level."""
    return STYLE_LAYERS[: STYLE_LAYERS.index(level) + 1]
