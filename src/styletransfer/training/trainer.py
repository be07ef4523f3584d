"""Training loop of the AdaIN decoder (the seed's steps: input, extract, generate, losses, update,
iterate), with an optional PatchGAN adversarial loss.

One step, batch of content crops ``c`` and style crops ``s``::

    f_c = E(c)[relu4_1]                 frozen VGG19, no grad
    f_s = E(s)[relu1_1 .. relu4_1]      frozen VGG19, no grad
    t   = AdaIN(f_c, f_s[relu4_1])      target features
    y   = D(t)                          decoder (trained)
    f_y = E(y)[relu1_1 .. relu4_1]      input gradient only
    L   = w_c * |f_y[relu4_1] - t|^2 + w_s * sum_l L_style(f_y[l], f_s[l]) [+ w_adv * L_G(Disc(y))]

Feature scales: the Caffe VGG19 features of relu1_1 are ~100x smaller than relu4_1's, so with raw
features the shallow layers (colour, fine texture) hardly count. Every layer's features are divided
by their mean activation over a batch of training images (measured once at the start, stored in
the config): the per-layer version of the "normalised VGG" that AdaIN's weights (content 1,
style 10) were tuned for.

Distributed: started by ``torchrun``, each process draws its own batches (seed + rank) and the
decoder is wrapped in DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes files.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..device import autocast, resolve_device
from ..encoders import VGG19Encoder, layer_channels, vgg19
from ..errors import StyleTransferError
from ..image import save_image
from ..losses import content_loss, gram_matrix, gram_style_loss, mean_std_loss, total_variation
from ..models import Decoder, PatchDiscriminator, adain, d_loss, g_loss
from . import checkpoint as ckpt
from .data import CropSampler

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu4_1"


@dataclass
class TrainConfig:
    """Options of ``styletransfer train`` (every field is a CLI flag)."""

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
        for name in ("steps", "batch_size", "crop", "checkpoint_every", "sample_every", "log_every"):
            if getattr(self, name) < 1:
                raise StyleTransferError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.crop % 8:
            raise StyleTransferError(f"--crop must be a multiple of 8, got {self.crop}")
        if self.style_loss not in ("meanstd", "gram"):
            raise StyleTransferError(f"--style-loss must be meanstd or gram, got {self.style_loss!r}")
        if self.gan_loss not in ("hinge", "nonsat"):
            raise StyleTransferError(f"--gan-loss must be hinge or nonsat, got {self.gan_loss!r}")
        for name in ("lr", "content_weight", "style_weight", "decoder_width", "disc_lr"):
            if not getattr(self, name) > 0:
                raise StyleTransferError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("lr_decay", "tv_weight", "gan_weight"):
            if getattr(self, name) < 0:
                raise StyleTransferError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")


def init_distributed(device: str = "auto") -> None:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1); gloo on CPU, nccl on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def measure_layer_scales(encoder: VGG19Encoder, images: torch.Tensor) -> dict[str, float]:
    """Mean activation of each style layer over a batch: the per-layer normalisation constants."""
    with torch.no_grad():
        feats = encoder(images, STYLE_LAYERS)
    return {k: max(float(v.float().mean()), 1e-6) for k, v in feats.items()}


class Trainer:
    """Trains a :class:`~styletransfer.models.Decoder`; see the module docstring for the step.

    Args:
        config: the options.
        encoder: the frozen encoder; defaults to the pretrained VGG19 (tests pass a tiny one).
    """

    def __init__(self, config: TrainConfig, encoder: VGG19Encoder | None = None) -> None:
        config.validate()
        self.cfg = config
        init_distributed(config.device)
        self.rank, self.world = _rank_world()
        self.device = resolve_device(config.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        self.encoder = (encoder or vgg19(device="cpu")).to(self.device)
        self.out = Path(config.out_dir)
        self.content = CropSampler(config.content_dir, config.crop)
        self.style = CropSampler(config.style_dir, config.crop)
        self.gen = torch.Generator().manual_seed(config.seed * 1000 + self.rank)
        torch.manual_seed(config.seed * 1000 + self.rank)
        self.step = 0
        self.ckpt_path = self.out / "checkpoint.safetensors"
        resuming = self.ckpt_path.exists()
        if resuming:
            _, meta = ckpt.load(self.ckpt_path)
            self.cfg.layer_scales = meta["config"]["layer_scales"]
        elif not config.layer_scales:
            probe = torch.cat([self.content.center(i, config.crop) for i in range(8)]
                              + [self.style.center(i, config.crop) for i in range(8)]).to(self.device)
            self.cfg.layer_scales = measure_layer_scales(self.encoder, probe)
        scales = self.cfg.layer_scales
        in_ch = layer_channels(CONTENT_LAYER, self.encoder.width_divisor)
        self.decoder = Decoder(in_ch, config.decoder_width, input_scale=scales[CONTENT_LAYER]).to(self.device)
        self.disc = PatchDiscriminator().to(self.device) if config.gan_weight > 0 else None
        if config.channels_last:
            self.encoder.to(memory_format=torch.channels_last)
            self.decoder.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.decoder.parameters(), lr=config.lr)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=config.disc_lr, betas=(0.5, 0.999)) if self.disc else None
        if resuming:
            self._restore()
        self.model: nn.Module = self.decoder
        self.disc_model: nn.Module | None = self.disc
        if self.world > 1:
            self.model = nn.parallel.DistributedDataParallel(self.decoder)
            if self.disc is not None:
                self.disc_model = nn.parallel.DistributedDataParallel(self.disc)
        self.samples = self._sample_batch()

    # ----- one step ------------------------------------------------------------------------
    def _scaled(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.float() / self.cfg.layer_scales[k] for k, v in feats.items()}

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The decoder's losses for one batch; returns (named losses incl. ``total``, output)."""
        cfg = self.cfg
        with autocast(self.device, cfg.amp):
            with torch.no_grad():
                f_c = self.encoder(content, [CONTENT_LAYER])[CONTENT_LAYER]
                f_s = self.encoder(style, STYLE_LAYERS)
                target = adain(f_c.float(), f_s[CONTENT_LAYER].float())
            output = self.model(target)
            f_y = self.encoder(output, STYLE_LAYERS)
        f_y, f_s_sc = self._scaled(f_y), self._scaled(f_s)
        out: dict[str, torch.Tensor] = {}
        out["content"] = content_loss(f_y[CONTENT_LAYER], target / cfg.layer_scales[CONTENT_LAYER])
        if cfg.style_loss == "meanstd":
            out["style"] = sum(mean_std_loss(f_y[l], f_s_sc[l]) for l in STYLE_LAYERS)
        else:
            out["style"] = sum(gram_style_loss(f_y[l], gram_matrix(f_s_sc[l])) for l in STYLE_LAYERS)
        total = cfg.content_weight * out["content"] + cfg.style_weight * out["style"]
        if cfg.tv_weight > 0:
            out["tv"] = total_variation(output)
            total = total + cfg.tv_weight * out["tv"]
        if self.disc is not None:
            # the plain module, not the DDP wrapper: this pass only needs gradients w.r.t. ``output``
            with autocast(self.device, cfg.amp):
                out["adv"] = g_loss(self.disc(output).float(), cfg.gan_loss)
            total = total + cfg.gan_weight * out["adv"]
        out["total"] = total
        return out, output

    def train_step(self) -> dict[str, float]:
        """Sample a batch, update the decoder (and the discriminator if on); returns float losses."""
        cfg = self.cfg
        lr = cfg.lr / (1.0 + cfg.lr_decay * self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        content = self._prep(self.content.sample(cfg.batch_size, self.gen))
        style = self._prep(self.style.sample(cfg.batch_size, self.gen))
        if self.disc is not None:
            self.disc.requires_grad_(False)  # the decoder step must not touch D's weights
        losses, output = self.losses(content, style)
        self.opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        self.opt.step()
        if self.disc is not None:
            self.disc.requires_grad_(True)
            with autocast(self.device, cfg.amp):  # one forward for both halves (DDP-friendly)
                logits = self.disc_model(torch.cat([style, output.detach()])).float()
            real, fake = logits.chunk(2)
            losses["disc"] = d_loss(real, fake, cfg.gan_loss)
            self.opt_d.zero_grad(set_to_none=True)
            losses["disc"].backward()
            self.opt_d.step()
        self.step += 1
        result = {k: float(v.detach()) for k, v in losses.items()}
        result["lr"] = lr
        return result

    # ----- files ---------------------------------------------------------------------------
    def _sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = 3
        size = min(256, self.cfg.crop)
        c = torch.cat([self.content.center(i * 7, size) for i in range(n)])
        s = torch.cat([self.style.center(i * 5, size) for i in range(n)])
        return c, s

    @torch.no_grad()
    def write_samples(self) -> Path:
        """A grid image: one row per pair, columns content | style | output."""
        c, s = self.samples
        with autocast(self.device, self.cfg.amp):
            f_c = self.encoder(self._prep(c), [CONTENT_LAYER])[CONTENT_LAYER]
            f_s = self.encoder(self._prep(s), [CONTENT_LAYER])[CONTENT_LAYER]
            y = self.decoder(adain(f_c.float(), f_s.float())).float().cpu().clamp(0, 1)
        rows = [torch.cat([c[i], s[i], y[i]], dim=2) for i in range(c.shape[0])]
        grid = torch.cat(rows, dim=1).unsqueeze(0)
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_image(grid, path, overwrite=True)

    def save_checkpoint(self) -> Path:
        tensors = {f"decoder.{k}": v for k, v in self.decoder.state_dict().items()}
        meta: dict[str, Any] = {"step": self.step, "config": dataclasses.asdict(self.cfg),
                                "decoder": self.decoder.config}
        t, m = ckpt.optimizer_tensors("decoder", self.opt)
        tensors.update(t)
        meta["opt.decoder"] = m
        if self.disc is not None:
            tensors.update({f"disc.{k}": v for k, v in self.disc.state_dict().items()})
            t, m = ckpt.optimizer_tensors("disc", self.opt_d)
            tensors.update(t)
            meta["opt.disc"] = m
        gen_states = [self.gen.get_state()]
        torch_states = [torch.get_rng_state()]
        if self.world > 1:
            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, (self.gen.get_state(), torch.get_rng_state()))
            gen_states = [g for g, _ in gathered]
            torch_states = [t for _, t in gathered]
        for r, (g, t) in enumerate(zip(gen_states, torch_states)):
            tensors[f"rng.data.{r}"] = g
            tensors[f"rng.torch.{r}"] = t
        meta["world_size"] = self.world
        if self.rank != 0:
            return self.ckpt_path
        ckpt.atomic_save(tensors, self.ckpt_path, meta)
        self.export_model(self.out / "model.safetensors")
        (self.out / "config.json").write_text(json.dumps(meta["config"], indent=2))
        return self.ckpt_path

    def export_model(self, path: str | Path, half: bool = False) -> Path:
        """Write the decoder alone (what ``--model`` loads), optionally in fp16."""
        sd = {f"decoder.{k}": (v.half() if half and v.is_floating_point() else v)
              for k, v in self.decoder.state_dict().items()}
        meta = {"decoder": self.decoder.config, "encoder": {"name": "vgg19", "layer": CONTENT_LAYER,
                "normalization": self.encoder.normalization, "pooling": self.encoder.pooling},
                "step": self.step, "train": {k: v for k, v in dataclasses.asdict(self.cfg).items()
                                              if k not in ("layer_scales",)}}
        return ckpt.atomic_save(sd, path, meta)

    def _restore(self) -> None:
        tensors, meta = ckpt.load(self.ckpt_path)
        if meta.get("world_size", 1) != self.world:
            raise StyleTransferError(
                f"{self.ckpt_path} was written by {meta.get('world_size', 1)} process(es); resume with the same count")
        self.decoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")})
        ckpt.restore_optimizer("decoder", self.opt, tensors, meta["opt.decoder"])
        if self.disc is not None:
            if "opt.disc" not in meta:
                raise StyleTransferError(f"{self.ckpt_path} has no discriminator; resume without --gan-weight")
            self.disc.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
            ckpt.restore_optimizer("disc", self.opt_d, tensors, meta["opt.disc"])
        self.gen.set_state(tensors[f"rng.data.{self.rank}"])
        torch.set_rng_state(tensors[f"rng.torch.{self.rank}"])
        self.step = int(meta["step"])
        self._truncate_metrics()

    def _truncate_metrics(self) -> None:
        """Drop metric rows logged after the checkpoint we resume from (they will be redone)."""
        path = self.out / "metrics.csv"
        if self.rank != 0 or not path.exists():
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= self.step]
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    # ----- loop ----------------------------------------------------------------------------
    def fit(self, progress: bool = True) -> dict[str, float]:
        """Train until ``steps`` (or ``max_minutes``); checkpoints, samples and a metrics CSV."""
        from tqdm import tqdm

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        metrics_path = self.out / "metrics.csv"
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not progress or self.rank != 0,
                   dynamic_ncols=True, desc="train")
        last: dict[str, float] = {}
        running: dict[str, float] = {}
        while self.step < cfg.steps:
            t0 = time.monotonic()
            last = self.train_step()
            last["sec"] = time.monotonic() - t0
            for k, v in last.items():
                running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
            if not math.isfinite(last["total"]):
                raise StyleTransferError(f"loss became {last['total']} at step {self.step}; lower --lr")
            bar.update(1)
            bar.set_postfix({k: f"{running[k]:.3g}" for k in ("content", "style", "adv", "disc") if k in running})
            if self.rank == 0 and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                new = not metrics_path.exists()
                with open(metrics_path, "a", newline="") as f:
                    w = csv.writer(f)
                    keys = sorted(last)
                    if new:
                        w.writerow(["step"] + keys)
                    w.writerow([self.step] + [f"{last[k]:.6g}" for k in keys])
            out_of_time = cfg.max_minutes is not None and (time.monotonic() - start) > cfg.max_minutes * 60
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or out_of_time:
                self.save_checkpoint()
            if self.rank == 0 and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                self.write_samples()
            if out_of_time:
                break
        bar.close()
        return last

