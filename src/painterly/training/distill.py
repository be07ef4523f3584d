"""Distillation of the slim student encoder (``painterly distill``).

Collaborative Distillation (Wang et al., CVPR 2020) shrinks VGG19 for style transfer by training
a narrow copy of it to predict the teacher's features. One step, a batch ``x`` of random crops of
photos *and* paintings (both pass through the encoder at stylization time)::

    t_l = T(x)[l]                         frozen teacher VGG19, no grad, l = relu1_1 .. relu4_1
    s_l = S(x)[l]                         the student (trained), C_l / d channels
    L   = sum_l |P_l(s_l) - t_l|^2 / mean(t_l^2)      P_l: learned 1x1 conv, C_l / d -> C_l

Start: the student keeps the teacher's strongest filters (:func:`~painterly.encoders.student.pruned_student`)
and each ``P_l`` is fitted by least squares on a batch of its own, so step 0 is already a fair
baseline. The per-level normalised error on a fixed validation batch goes to ``metrics.csv``
(``err_relu1_1`` ...) every ``log_every`` steps; lower is better, 0 = the teacher exactly.

Measured on the project's data (2-core AVX512-BF16 EPYC): Adam 1e-4 beats 3e-4 and 1e-3 (which
first disturb the pruned weights); 3,576 steps at 8 x 128^2 took 40 min and the error was still
falling (``../shared/models/student-quarter-v0/TRAINING.md``).

Files, in ``out_dir`` as the decoder trainer writes them: ``checkpoint.safetensors`` (student,
projections, Adam state, step and sampler state: a resume continues exactly), ``student.safetensors``
(the student alone, activation scales folded so every level is O(1), what ``train --student`` and
``tools/pack_model.py --student`` take) and ``metrics.csv``.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import checkpoint as ckpt
from ..encoders import VGG19Encoder, layer_channels, vgg19
from ..encoders.student import (
    STUDENT_LAST, fold_activation_scales, pruned_student, save_student, student_from_tensors, student_meta,
    student_tensors,
)
from ..errors import StyleTransferError
from .data import CropSampler
from .config import STYLE_LAYERS, check_flags
from .metrics import append_metrics

__all__ = ["DistillConfig", "Distiller", "level_errors"]


@dataclass
class DistillConfig:
    """Options of ``painterly distill`` (every field is a CLI flag)."""

    content_dir: str
    style_dir: str
    out_dir: str
    width_divisor: int = 4  # 4: 16-32-64-128 channels, 1/16 of the teacher's MACs
    steps: int = 20000
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 50
    val_size: int = 16  # crops in the fixed validation batch
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time

    def validate(self) -> None:
        check_flags(self, at_least_one=("width_divisor", "steps", "batch_size", "crop", "checkpoint_every", "log_every",
                                        "val_size"), positive=("lr",))


def level_errors(student: VGG19Encoder, proj: nn.ModuleDict, teacher_feats: dict[str, torch.Tensor],
                 x: torch.Tensor) -> dict[str, torch.Tensor]:
    """``|P_l(S(x)_l) - t_l|^2 / mean(t_l^2)`` per level (the distillation loss's terms)."""
    s = student(x, list(proj))
    return {lv: F.mse_loss(proj[lv](s[lv]), t) / t.pow(2).mean().clamp_min(1e-12) for lv, t in teacher_feats.items()}


@torch.no_grad()
def _fit_projections(student: VGG19Encoder, proj: nn.ModuleDict, teacher_feats: dict[str, torch.Tensor],
                     x: torch.Tensor) -> None:
    """Least-squares ``P_l`` (weights and bias) from student to teacher features on ``x``."""
    s = student(x, list(proj))
    for lv, t in teacher_feats.items():
        a = s[lv].permute(0, 2, 3, 1).reshape(-1, s[lv].shape[1]).double()
        a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
        b = t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).double()
        sol = torch.linalg.lstsq(a, b).solution  # (C_s + 1, C_t)
        proj[lv].weight.copy_(sol[:-1].t()[:, :, None, None].float())
        proj[lv].bias.copy_(sol[-1].float())


class Distiller:
    """Trains a student encoder from a teacher; see the module docstring.

    Args:
        config: the options.
        teacher: the frozen teacher; default the pretrained VGG19 (tests pass a tiny one).
        resume: continue ``out_dir/checkpoint.safetensors``; without it an existing one is an error.
    """

    def __init__(self, config: DistillConfig, teacher: VGG19Encoder | None = None, resume: bool = False) -> None:
        config.validate()
        self.cfg = config
        self.teacher = teacher if teacher is not None else vgg19(device="cpu")
        self.out = Path(config.out_dir)
        self.ckpt_path = self.out / "checkpoint.safetensors"
        if self.ckpt_path.exists() and not resume:
            raise StyleTransferError(f"{self.ckpt_path} exists: pass --resume to continue that run, or choose a new --out")
        if resume and not self.ckpt_path.exists():
            raise StyleTransferError(f"--resume: {self.ckpt_path} does not exist")
        self.levels = list(STYLE_LAYERS)
        self.data = [CropSampler(config.content_dir, config.crop), CropSampler(config.style_dir, config.crop)]
        if not all(len(d) for d in self.data):
            raise StyleTransferError("distill needs images in both --content and --style")
        self.gen = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)
        self.val = self._batch(config.val_size, torch.Generator().manual_seed(config.seed + 12345))
        with torch.no_grad():
            self.val_teacher = self.teacher(self.val, self.levels)
        self.step = 0
        if resume:
            self._restore()
        else:
            self.student = pruned_student(self.teacher, config.width_divisor, STUDENT_LAST).requires_grad_(True)
            self.proj = self._projections()
            # fitted on a batch of their own: fitted on the validation batch, step 0 would look
            # better than it is (the fit is ill-conditioned)
            fit = self._batch(max(16, config.batch_size), torch.Generator().manual_seed(config.seed + 777))
            with torch.no_grad():
                _fit_projections(self.student, self.proj, self.teacher(fit, self.levels), fit)
            self.opt = self._optimizer()

    def _projections(self) -> nn.ModuleDict:
        d = self.teacher.width_divisor
        s = self.cfg.width_divisor * d
        return nn.ModuleDict({lv: nn.Conv2d(layer_channels(lv, s), layer_channels(lv, d), 1) for lv in self.levels})

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(list(self.student.parameters()) + list(self.proj.parameters()), lr=self.cfg.lr)

    def _batch(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Half photos, half paintings."""
        k = n // 2
        return torch.cat([self.data[0].sample(n - k, gen), self.data[1].sample(k, gen)]) if k else self.data[0].sample(n, gen)

    def errors(self) -> dict[str, float]:
        """Per-level normalised error on the fixed validation batch."""
        with torch.no_grad():
            return {lv: float(e) for lv, e in level_errors(self.student, self.proj, self.val_teacher, self.val).items()}

    def train_step(self) -> float:
        x = self._batch(self.cfg.batch_size, self.gen)
        with torch.no_grad():
            t = self.teacher(x, self.levels)
        loss = sum(level_errors(self.student, self.proj, t, x).values())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    # ----- files ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        tensors = student_tensors(self.student)
        tensors.update({f"proj.{k}": v.detach().contiguous() for k, v in self.proj.state_dict().items()})
        opt_t, opt_meta = ckpt.optimizer_tensors("opt", self.opt)
        tensors.update(opt_t)
        tensors["rng.gen"] = self.gen.get_state()
        meta = {"config": dataclasses.asdict(self.cfg), "step": self.step, "student": student_meta(self.student),
                "opt": opt_meta}
        return ckpt.atomic_save(tensors, self.ckpt_path, meta)

    def _restore(self) -> None:
        tensors, meta = ckpt.load(self.ckpt_path)
        saved = meta["config"]
        if saved.get("width_divisor") != self.cfg.width_divisor:
            raise StyleTransferError(f"{self.ckpt_path} was distilled with --width-divisor {saved.get('width_divisor')}, "
                                     f"not {self.cfg.width_divisor}")
        self.student = student_from_tensors(tensors, meta["student"], str(self.ckpt_path)).requires_grad_(True)
        self.proj = self._projections()
        self.proj.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("proj.")})
        self.opt = self._optimizer()
        ckpt.restore_optimizer("opt", self.opt, tensors, meta["opt"])
        self.gen.set_state(tensors["rng.gen"])
        self.step = int(meta["step"])

    def export_student(self, path: str | Path | None = None) -> Path:
        """The student alone, activation scales folded (measured on the validation batch)."""
        import copy

        student = copy.deepcopy(self.student).requires_grad_(False)
        factors = fold_activation_scales(student, self.val)
        return save_student(student, path or self.out / "student.safetensors", steps=self.step,
                            errors=self.errors(), folded=factors)

    def fit(self, progress: bool = True) -> dict[str, float]:
        """Distil until ``steps`` (or ``max_minutes``); checkpoints, metrics, the student file."""
        from tqdm import tqdm

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        if self.step == 0:
            append_metrics(self.out / "metrics.csv", 0, {f"err_{k}": v for k, v in self.errors().items()})
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not progress, dynamic_ncols=True, desc="distill")
        errs: dict[str, float] = {}
        while self.step < cfg.steps:
            t0 = time.monotonic()
            loss = self.train_step()
            if loss != loss or loss in (float("inf"), float("-inf")):
                raise StyleTransferError(f"loss became {loss} at step {self.step}; lower --lr")
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3g}")
            out_of_time = cfg.max_minutes is not None and time.monotonic() - start > cfg.max_minutes * 60
            if self.step % cfg.log_every == 0 or self.step == cfg.steps or out_of_time:
                errs = {f"err_{k}": v for k, v in self.errors().items()}
                append_metrics(self.out / "metrics.csv", self.step,
                               {"loss": loss, "sec": time.monotonic() - t0, **errs})
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or out_of_time:
                self.save_checkpoint()
                self.export_student()
            if out_of_time:
                break
        bar.close()
        return errs
