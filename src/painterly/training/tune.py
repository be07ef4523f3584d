"""Style fine-tuning of a fast model's decoders through its whole cascade (``painterly tune``).

The fast model's decoders are trained to *invert* the encoder (reconstruction), so nothing in the
model was ever asked to paint: the transforms move feature statistics and the decoders draw a
softly brushed photo. Tuning starts from those decoders and trains them, all levels at once, on
the objective the benchmarks measure and optimisation minimises (Gatys et al., 2016, with the
relative errors of :func:`painterly.losses.content_error` / :func:`~painterly.losses.style_error`).
One step, a batch of photo crops ``c`` and painting crops ``s``::

    y   = cascade(c, s)                   the fast pipeline as it runs at stylization time:
                                          for each level (relu4_1 .. relu1_1) encode the previous
                                          output, transform (AdaIN / WCT) towards s, decode (trained)
    L   = e_c(V(y)[relu4_2], V(c)[relu4_2]) + w_s(t) * e_s(V(y)[relu1_1..relu5_1], V(s))
          + w_id * |cascade(c, c) - c|_1  (identity loss, SANet (Park & Lee, 2019): a photo styled
                                           with itself must come back; it keeps faces drawable)
          [+ w_t * |cascade(T(c), s) - T(y)|_1]  (optional: stability under motion, T a small random
                                           camera motion, sub-pixel shift, rotation, zoom (Gupta et
                                           al., "Characterizing and Improving Stability in Neural
                                           Style Transfer", 2017): video frames move, painted
                                           strokes should move with them)
          [+ w_adv * L_G(D(y))]           (optional: the PatchGAN of ``models/discriminator.py``,
                                           trained against real painting crops, the design note's
                                           "more artistic" adversarial loss)

``V`` is the full pretrained VGG19 (frozen; the student encoder is frozen too). ``w_s(t)`` can rise
linearly from 0 to ``style_weight`` over ``ramp_steps`` (decoders trained from scratch with style
losses go through a blobby stage, ``../shared/models/adain-v1/TRAINING.md``), but starting from
reconstruction decoders a ramp hurts: measured on the slim model, 25 steps of a 200-step ramp moved
the validation style error from 0.565 to 0.707 (the content term alone pulls the pictures back to
the photo), 25 steps at full weight to 0.494, with no blobs. So the default is no ramp.

The transform statistics of the style are constants (as at stylization time); WCT's content-side
map is computed without gradient and applied linearly (the eigendecomposition's gradient is
unstable when eigenvalues are close), AdaIN's is differentiated.

Held out: :data:`HELD_OUT_STYLES` (the paintings of ``benchmarks/bench_peers.py`` and of the
validation pairs) are never trained on. Files in ``out_dir``: ``checkpoint.safetensors`` (a resume
continues exactly), ``model.safetensors`` (a bundle like the built-in ones: ``--model FILE``) and
``metrics.csv`` (``val_content`` / ``val_style``: the relative errors on fixed held-out pairs).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F

from .. import checkpoint as ckpt
from ..device import autocast
from ..encoders import VGG19Encoder, vgg19
from ..errors import StyleTransferError
from ..losses import content_error, gram_matrix, style_error
from ..models import Decoder, PatchDiscriminator, adain_affine, d_loss, g_loss
from ..models.decoder import deepest_first
from ..models.wct import wct_affine
from ..stylizers.fast import level_statistics, level_transform
from ..stylizers.fast_model import check_transform, read_model, write_bundle
from .config import check_flags
from .data import CropSampler
from .metrics import append_metrics

__all__ = ["HELD_OUT_STYLES", "LOSS_STYLE_LAYERS", "TuneConfig", "Tuner", "cascade"]

CONTENT_LAYER = "relu4_2"
SHIFT = 4  # px: the largest translation of the stability loss's motion
ROTATE = 2.0  # degrees: its largest rotation
ZOOM = 0.03  # its largest zoom, as a log scale
MOTION_MARGIN = 16  # px left out at each border when comparing
LOSS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# Paintings never trained on: the six of benchmarks/bench_peers.py, then four for validation.
HELD_OUT_STYLES = (
    "the_scream", "jcj_kandinsky_composition_vii", "la_muse", "aesust_okeeffe_orange_blossoms",
    "dph_seurat_grande_jatte", "iecontra_ink_plum_blossom",
    "shipwreck", "sketch", "frida_kahlo", "dph_monet_haystacks",
)


@dataclass
class TuneConfig:
    """Options of ``painterly tune`` (every field is a CLI flag)."""

    content_dir: str
    style_dir: str
    out_dir: str
    model: str = "slim"  # the model whose decoders are tuned (a built-in name or a file)
    transform: str = "adain"  # the transform the decoders learn to paint with (adain, wct, mixed)
    steps: int = 3000
    batch_size: int = 2
    crop: int = 256
    lr: float = 1e-4
    style_weight: float = 3.0
    ramp_steps: int = 0
    identity_weight: float = 1.0
    temporal_weight: float = 0.0  # > 0 adds the motion-stability loss (video)
    gan_weight: float = 0.0  # > 0 adds the PatchGAN adversarial loss against real paintings
    gan_loss: str = "hinge"
    disc_lr: float = 2e-4
    hold_out: str = ",".join(HELD_OUT_STYLES)  # painting file stems never trained on
    val_pairs: int = 4
    seed: int = 0
    amp: bool = True  # bf16 autocast where the CPU has it natively
    checkpoint_every: int = 100
    log_every: int = 25
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time

    def validate(self) -> None:
        check_flags(self, at_least_one=("steps", "batch_size", "crop", "checkpoint_every", "log_every", "val_pairs"),
                    positive=("lr", "style_weight", "disc_lr"),
                    non_negative=("ramp_steps", "identity_weight", "gan_weight", "temporal_weight"))
        check_transform(self.transform, "--transform")
        if self.gan_loss not in ("hinge", "nonsat"):
            raise StyleTransferError(f"--gan-loss must be hinge or nonsat, got {self.gan_loss!r}")


def _transform(f: torch.Tensor, stats, kind: str) -> torch.Tensor:
    """One image's transform with gradient to ``f`` (1, C, h, w): AdaIN differentiated through the
    content statistics; WCT's map computed without gradient, then applied (linear in ``f``)."""
    if kind == "adain":
        scale, shift = adain_affine(f, *stats)
        return f.float() * scale + shift
    with torch.no_grad():
        a, b = wct_affine(f.detach().float(), *stats)
    c = f.shape[1]
    return (a @ f.float().reshape(c, -1) + b).reshape(f.shape)


def cascade(encoder: VGG19Encoder, decoders: Mapping[str, Decoder], content: torch.Tensor,
            styles: torch.Tensor, transform: str = "adain", amp: bool = True) -> torch.Tensor:
    """The fast pipeline with gradients (one style per content image, alpha 1, no margin): what
    the decoders are tuned through.

    Shape:
        - content, styles: (N, 3, H, W) in [0, 1], H and W multiples of 8
        - output: (N, 3, H, W) in [0, 1]
    """
    levels = deepest_first(decoders)
    kinds = {lv: level_transform(transform, lv) for lv in levels}
    with torch.no_grad():
        stats = [level_statistics(encoder, s[None], kinds) for s in styles]
    device = content.device
    x = content
    for level in levels:
        with autocast(device, amp):
            f = encoder(x, [level])[level]
        t = torch.cat([_transform(f[i: i + 1], st[level], kinds[level]) for i, st in enumerate(stats)])
        with autocast(device, amp):
            x = decoders[level](t).float().clamp(0, 1)
    return x


class Tuner:
    """Tunes a fast model's decoders with style losses; see the module docstring.

    Args:
        config: the options.
        loss_net: the frozen network of the losses; default the pretrained VGG19 (tests pass a tiny one).
        model: the model to tune (a :class:`~painterly.stylizers.fast_model.FastModel`); default
            ``read_model(config.model)``. On resume the checkpoint's decoders replace its decoders.
        resume: continue ``out_dir/checkpoint.safetensors``; without it an existing one is an error.
    """

    def __init__(self, config: TuneConfig, loss_net: VGG19Encoder | None = None, model=None,
                 resume: bool = False) -> None:
        config.validate()
        self.cfg = config
        self.out = Path(config.out_dir)
        self.ckpt_path = self.out / "checkpoint.safetensors"
        if self.ckpt_path.exists() and not resume:
            raise StyleTransferError(f"{self.ckpt_path} exists: pass --resume to continue that run, or choose a new --out")
        if resume and not self.ckpt_path.exists():
            raise StyleTransferError(f"--resume: {self.ckpt_path} does not exist")
        self.model = model if model is not None else read_model(config.model)
        self.encoder = self.model.encoder if self.model.encoder is not None else vgg19(device="cpu")
        self.encoder.requires_grad_(False)
        self.loss_net = (loss_net if loss_net is not None else vgg19(device="cpu")).requires_grad_(False)
        self.decoders = {lv: d.train().requires_grad_(True) for lv, d in self.model.decoders.items()}
        held = {s.strip() for s in config.hold_out.split(",") if s.strip()}
        self.photos = CropSampler(config.content_dir, config.crop)
        self.paintings = CropSampler(config.style_dir, config.crop, exclude=held)
        val_styles = sorted(self.paintings.excluded)  # the held-out paintings the folder has
        if not val_styles:
            raise StyleTransferError("tune needs held-out paintings for validation: --hold-out names none of --style's files")
        self.val = self._val_pairs(val_styles)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.motion_gen = torch.Generator().manual_seed(config.seed + 1)
        torch.manual_seed(config.seed)
        self.opt = torch.optim.Adam([p for d in self.decoders.values() for p in d.parameters()], lr=config.lr)
        self.disc = PatchDiscriminator() if config.gan_weight > 0 else None
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=config.disc_lr, betas=(0.5, 0.999)) if self.disc else None
        self.step = 0
        if resume:
            self._restore()

    def _val_pairs(self, val_styles: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed pairs: the first ``val_pairs`` photos x the held-out paintings not in the benchmark."""
        bench = set(HELD_OUT_STYLES[:6])
        names = [s for s in val_styles if s not in bench] or val_styles
        sampler = CropSampler(self.cfg.style_dir, self.cfg.crop, include=set(names))
        n = self.cfg.val_pairs
        photos = torch.cat([self.photos.center(i, self.cfg.crop) for i in range(n)])
        styles = torch.cat([sampler.center(i, self.cfg.crop) for i in range(n)])
        return photos, styles

    def style_weight(self) -> float:
        ramp = self.cfg.ramp_steps
        return self.cfg.style_weight * (min(1.0, (self.step + 1) / ramp) if ramp else 1.0)

    def losses(self, content: torch.Tensor, style: torch.Tensor, motion_gen: torch.Generator | None = None
               ) -> dict[str, torch.Tensor]:
        """``content`` and ``style`` errors (means over the batch) of the cascade's output, the
        ``identity`` L1 when its weight is > 0, ``adv`` with the GAN on, and ``output`` (the
        pictures, not a loss)."""
        cfg = self.cfg
        y = cascade(self.encoder, self.decoders, content, style, cfg.transform, cfg.amp)
        layers = [*LOSS_STYLE_LAYERS, CONTENT_LAYER]
        with torch.no_grad(), autocast(content.device, cfg.amp):
            fc = self.loss_net(content, [CONTENT_LAYER])[CONTENT_LAYER]
            fs = self.loss_net(style, LOSS_STYLE_LAYERS)
            target_grams = {lv: gram_matrix(fs[lv]) for lv in LOSS_STYLE_LAYERS}
        with autocast(content.device, cfg.amp):
            fy = self.loss_net(y, layers)
        out = {"content": content_error(fy[CONTENT_LAYER], fc).mean(), "style": style_error(fy, target_grams).mean()}
        if cfg.identity_weight > 0:
            ident = cascade(self.encoder, self.decoders, content, content, cfg.transform, cfg.amp)
            out["identity"] = (ident - content).abs().mean()
        if cfg.temporal_weight > 0:
            out["temporal"] = self.motion_error(content, style, y, motion_gen or self.motion_gen)
        if self.disc is not None:
            self.disc.requires_grad_(False)  # the decoders' step must not touch D's weights
            out["adv"] = g_loss(self.disc(y).float(), cfg.gan_loss)
            self.disc.requires_grad_(True)
        out["output"] = y
        return out

    def motion_error(self, content: torch.Tensor, style: torch.Tensor, y: torch.Tensor, gen: torch.Generator
                     ) -> torch.Tensor:
        """``|cascade(T(c)) - T(y)|_1`` away from the border, ``T`` a small random camera motion.

        ``T``: a similarity warp (bicubic, as the video blend warps) with a sub-pixel translation of
        up to ``SHIFT`` px each way, a rotation of up to ``ROTATE`` degrees and a zoom of up to
        ``ZOOM``, drawn from ``gen`` (the run's own in training, saved in checkpoints): the motions
        of a clip between two frames. Integer shifts alone (the first version) leave sub-pixel pans,
        zooms and rotations untrained, and those are most of what a camera does.
        """
        n, _, h, w = content.shape
        u = torch.rand(4, generator=gen) * 2 - 1  # in [-1, 1): dx, dy, angle, log zoom
        a, s = math.radians(ROTATE) * float(u[2]), math.exp(ZOOM * float(u[3]))
        theta = torch.tensor([[s * math.cos(a), -s * math.sin(a) * h / w, 2 * SHIFT * float(u[0]) / w],
                              [s * math.sin(a) * w / h, s * math.cos(a), 2 * SHIFT * float(u[1]) / h]])
        grid = F.affine_grid(theta.expand(n, 2, 3).to(content), list(content.shape), align_corners=False)

        def move(x: torch.Tensor) -> torch.Tensor:
            return F.grid_sample(x.float(), grid, mode="bicubic", padding_mode="reflection", align_corners=False)

        ys = cascade(self.encoder, self.decoders, move(content).clamp(0, 1), style, self.cfg.transform, self.cfg.amp)
        # reflected borders and the encoder's zero padding differ: compare the inside
        m = min(MOTION_MARGIN, min(h, w) // 8)
        return (ys[..., m:-m, m:-m] - move(y)[..., m:-m, m:-m]).abs().mean()

    def train_step(self) -> dict[str, float]:
        content = self.photos.sample(self.cfg.batch_size, self.gen)
        style = self.paintings.sample(self.cfg.batch_size, self.gen)
        parts = self.losses(content, style)
        output = parts.pop("output")
        w_s = self.style_weight()
        loss = parts["content"] + w_s * parts["style"] + self.cfg.identity_weight * parts.get("identity", 0.0) \
            + self.cfg.gan_weight * parts.get("adv", 0.0) + self.cfg.temporal_weight * parts.get("temporal", 0.0)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.disc is not None:  # real paintings vs this step's pictures
            logits = self.disc(torch.cat([style, output.detach()])).float()
            real, fake = logits[: len(style)], logits[len(style):]
            parts["disc"] = d_loss(real, fake, self.cfg.gan_loss)
            self.opt_d.zero_grad(set_to_none=True)
            parts["disc"].backward()
            self.opt_d.step()
        self.step += 1
        return {"loss": float(loss.detach()), "style_weight": w_s, **{k: float(v.detach()) for k, v in parts.items()}}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Content and style errors on the fixed held-out pairs (lower is better)."""
        nets = [*self.decoders.values(), *([self.disc] if self.disc is not None else [])]
        for net in nets:  # eval: the discriminator's spectral norm must not advance its power iteration
            net.eval()
        try:
            parts = self.losses(*self.val, motion_gen=torch.Generator().manual_seed(0))  # the same motion each time
            parts.pop("output")
        finally:
            for net in nets:
                net.train()
        return {f"val_{k}": float(v) for k, v in parts.items()}

    # ----- files ---------------------------------------------------------------------------
    def _decoder_tensors(self) -> dict[str, torch.Tensor]:
        return {f"dec.{lv}.{k}": v.detach().contiguous() for lv, d in self.decoders.items() for k, v in d.state_dict().items()}

    def save_checkpoint(self) -> Path:
        tensors = self._decoder_tensors()
        opt_t, opt_meta = ckpt.optimizer_tensors("opt", self.opt)
        tensors.update(opt_t)
        tensors["rng.gen"] = self.gen.get_state()
        tensors["rng.shift"] = self.motion_gen.get_state()  # the key of the first (shift-only) version
        meta = {"config": dataclasses.asdict(self.cfg), "step": self.step, "opt": opt_meta}
        if self.disc is not None:
            t, m = ckpt.network_tensors("disc", self.disc, self.opt_d)
            tensors.update(t)
            meta.update(m)
        return ckpt.atomic_save(tensors, self.ckpt_path, meta)

    def _restore(self) -> None:
        tensors, meta = ckpt.load(self.ckpt_path)
        for key in ("model", "transform"):
            if meta["config"].get(key) != getattr(self.cfg, key):
                raise StyleTransferError(f"{self.ckpt_path} was tuned with --{key} {meta['config'].get(key)}, "
                                         f"not {getattr(self.cfg, key)}")
        for lv, d in self.decoders.items():
            d.load_state_dict({k[len(f"dec.{lv}."):]: v for k, v in tensors.items() if k.startswith(f"dec.{lv}.")})
        ckpt.restore_optimizer("opt", self.opt, tensors, meta["opt"])
        if self.disc is not None:
            ckpt.restore_network("disc", self.disc, self.opt_d, tensors, meta,
                                 f"{self.ckpt_path} has no discriminator: resume without --gan-weight")
        self.gen.set_state(tensors["rng.gen"])
        if "rng.shift" in tensors:
            self.motion_gen.set_state(tensors["rng.shift"])
        self.step = int(meta["step"])

    def export_model(self, path: str | Path | None = None, half: bool = True) -> Path:
        """The tuned model as a bundle (decoders fp16, the student it runs on in float32)."""
        recipe = {k: v for k, v in dataclasses.asdict(self.cfg).items() if k not in ("content_dir", "style_dir", "out_dir")}
        return write_bundle(self.decoders, path or self.out / "model.safetensors", self.model.settings,
                            student=self.model.encoder, steps={lv: self.step for lv in self.decoders}, half=half,
                            extra={"tuned": {**recipe, "step": self.step}, "transform": self.cfg.transform})

    def fit(self, progress: bool = True) -> dict[str, float]:
        """Tune until ``steps`` (or ``max_minutes``); checkpoints, metrics, the model file."""
        from tqdm import tqdm

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        val: dict[str, float] = {}
        if self.step == 0:
            append_metrics(self.out / "metrics.csv", 0, self.validate())
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not progress, dynamic_ncols=True, desc="tune")
        while self.step < cfg.steps:
            t0 = time.monotonic()
            parts = self.train_step()
            if parts["loss"] != parts["loss"] or abs(parts["loss"]) == float("inf"):
                raise StyleTransferError(f"loss became {parts['loss']} at step {self.step}; lower --lr")
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3g}")
            out_of_time = cfg.max_minutes is not None and time.monotonic() - start > cfg.max_minutes * 60
            last = self.step == cfg.steps or out_of_time
            if self.step % cfg.log_every == 0 or last:
                val = self.validate()
                append_metrics(self.out / "metrics.csv", self.step, {**parts, "sec": time.monotonic() - t0, **val})
            if self.step % cfg.checkpoint_every == 0 or last:
                self.save_checkpoint()
                self.export_model()
            if out_of_time:
                break
        bar.close()
        return val
