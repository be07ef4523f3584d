"""Training loop of the decoders of the fast mode (the seed's steps: input, extract, generate,
losses, update, iterate), with an optional PatchGAN adversarial loss.

Two phases. The first ``warmup_steps`` steps train the decoder to *invert* the encoder
(reconstruction; the objective of Universal Style Transfer's decoders, Li et al., 2017)::

    f_c = E(c)[level]                   frozen VGG19, no grad
    y   = D(f_c)
    L   = w_pix * |y - c|_1 + sum_{l <= level} |E(y)[l] - E(c)[l]|^2 / s_l^2

That objective converges in ~100 steps from a Kaiming-initialised decoder (measured, see
``kaiming_init``), and a decoder trained only with it is what ``--transform wct`` needs (set
``warmup_steps = steps``). The AdaIN phase then trains with AdaIN's losses (Huang & Belongie, 2017).
One AdaIN step, batch of content crops ``c`` and style crops ``s``::

    f_c = E(c)[relu4_1]                 frozen VGG19, no grad
    f_s = E(s)[relu1_1 .. relu4_1]      frozen VGG19, no grad
    t   = AdaIN(f_c, f_s[relu4_1])      target features
    y   = D(t)                          decoder (trained)
    f_y = E(y)[relu1_1 .. relu4_1]      input gradient only
    L   = w_c * |f_y[relu4_1] - t|^2 + w_s * sum_l L_style(f_y[l], f_s[l]) [+ w_adv * L_G(Disc(y))]
          [+ w_id * reconstruction loss of half the content batch: the identity loss of SANet
             (Park & Lee, 2019), stylizing a photo with itself must give the photo back]

(``relu4_1`` stands for ``level``: a decoder can invert any of relu1_1 .. relu4_1.)

Feature scales: the Caffe VGG19 features of relu1_1 are ~100x smaller than relu4_1's, so with raw
features the shallow layers (colour, fine texture) hardly count. Every layer's features are divided
by their mean activation over a batch of training images (measured once at the start, stored in
the config): the per-layer version of the "normalised VGG" that AdaIN's weights (content 1,
style 10) were tuned for.

Distributed: started by ``torchrun``, each process draws its own batches (seed + rank) and the
decoder is wrapped in DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes files;
``Trainer.close()`` (or ``with Trainer(...)``) leaves the process group before the process exits.
"""
from __future__ import annotations

import copy
import dataclasses
import gc
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..device import amp_dtype, autocast, resolve_device
from ..encoders import VGG19Encoder, layer_channels, vgg19
from ..errors import StyleTransferError
from ..image import save_image
from ..losses import content_loss, gram_matrix, gram_style_loss, mean_std_loss, total_variation
from ..models import Decoder, PatchDiscriminator, adain, d_loss, g_loss, kaiming_init
from .. import checkpoint as ckpt
from .config import ARCH_FIELDS, STYLE_LAYERS, TrainConfig, style_layers
from .data import CropSampler
from .distributed import all_ranks_agree, init_distributed, rank_world
from .metrics import append_metrics, truncate_metrics

def measure_layer_scales(encoder: VGG19Encoder, images: torch.Tensor) -> dict[str, float]:
    """Mean activation of each style layer over a batch: the per-layer normalisation constants."""
    with torch.no_grad():
        feats = encoder(images, STYLE_LAYERS)
    return {k: max(float(v.float().mean()), 1e-6) for k, v in feats.items()}


class Trainer:
    """Trains a :class:`~painterly.models.Decoder`; see the module docstring for the step.

    Args:
        config: the options.
        encoder: the frozen encoder; defaults to the pretrained VGG19 (tests pass a tiny one). The
            trainer works on its own copy, so moving it to a device or to channels_last does not
            change the process-wide cached encoder that the stylizers use.
        resume: continue from ``out_dir/checkpoint.safetensors``; without it an existing
            checkpoint is an error (a run is never continued or overwritten by accident).
    """

    def __init__(self, config: TrainConfig, encoder: VGG19Encoder | None = None, resume: bool = False) -> None:
        config.validate()
        self.cfg = config
        self._owns_group = init_distributed(config.device)
        self.rank, self.world = rank_world()
        self.device = resolve_device(config.device)
        if self.world > 1 and config.identity_weight > 0:
            raise StyleTransferError("--identity-weight is not supported with several processes (two decoder passes per step)")
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if encoder is None and config.student:
            from ..encoders.student import read_student

            encoder = read_student(config.student)
        self.encoder = copy.deepcopy(encoder or vgg19(device="cpu")).to(self.device)
        self.amp_dtype = amp_dtype(self.device) if config.amp else None
        # fp16 (CUDA without bf16) needs loss scaling or small gradients underflow to zero
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.out = Path(config.out_dir)
        self.ckpt_path = self.out / "checkpoint.safetensors"
        resuming = self.ckpt_path.exists()
        if resuming and not resume:
            raise StyleTransferError(f"{self.ckpt_path} exists: pass --resume to continue that run, or choose a new --out")
        if resume and not resuming:
            raise StyleTransferError(f"--resume: {self.ckpt_path} does not exist")
        self.content = CropSampler(config.content_dir, config.crop)
        self.style = CropSampler(config.style_dir, config.crop)
        self.gen = torch.Generator().manual_seed(config.seed * 1000 + self.rank)
        torch.manual_seed(config.seed * 1000 + self.rank)
        self.step = 0
        if resuming:
            _, meta = ckpt.load(self.ckpt_path)
            self._check_resumable(meta["config"])
            self.cfg.layer_scales = meta["config"]["layer_scales"]
        elif not config.layer_scales:
            probe = torch.cat([self.content.center(i, config.crop) for i in range(8)]
                              + [self.style.center(i, config.crop) for i in range(8)]).to(self.device)
            self.cfg.layer_scales = measure_layer_scales(self.encoder, probe)
        scales = self.cfg.layer_scales
        self.level, self.layers = config.level, style_layers(config.level)
        in_ch = layer_channels(self.level, self.encoder.width_divisor)
        self.decoder = Decoder(in_ch, config.decoder_width, input_scale=scales[self.level], level=self.level)
        if config.init == "kaiming":
            kaiming_init(self.decoder)
        self.decoder.to(self.device)
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

    # ----- teardown ------------------------------------------------------------------------
    def close(self, wait: bool = True) -> None:
        """Leave the process group this trainer joined (a ``torchrun`` run); a no-op otherwise.

        Every rank waits for the others (``wait``: a barrier, so no rank closes its connections
        while another is still in a collective), the DDP wrappers go (they hold the group), then
        the group is destroyed, which joins gloo's worker threads while the interpreter is alive.
        Without it a worker could still be releasing the last collective's tensors when Python
        shuts down, and taking the GIL then aborts the process. ``with Trainer(...) as t:`` calls
        it (without the barrier if the block raised: the other ranks may never get there).
        """
        self.model, self.disc_model = self.decoder, self.disc
        if self._owns_group and dist.is_initialized():
            gc.collect()  # a wrapper in a reference cycle would keep the group alive until a later gc
            if wait:
                dist.barrier()
            dist.destroy_process_group()
            self._owns_group = False

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(wait=exc_type is None)

    # ----- one step ------------------------------------------------------------------------
    def _scaled(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.float() / self.cfg.layer_scales[k] for k, v in feats.items()}

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def _autocast(self):
        return autocast(self.device, self.cfg.amp)

    def reconstruction_losses(self, content: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Pixel L1 and per-layer feature MSE of ``D(E(c))`` against ``c``; returns (losses, output)."""
        cfg = self.cfg
        with self._autocast():
            with torch.no_grad():
                f_c = self.encoder(content, self.layers)
            output = self.model(f_c[self.level].float())
            f_y = self.encoder(output, self.layers)
        f_y, f_c = self._scaled(f_y), self._scaled(f_c)
        out = {"pixel": (output.float() - content.float()).abs().mean(),
               "feature": sum(content_loss(f_y[l], f_c[l]) for l in self.layers)}
        out["total"] = cfg.pixel_weight * out["pixel"] + out["feature"]
        return out, output

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The decoder's AdaIN-phase losses for one batch; returns (named losses incl. ``total``, output)."""
        cfg = self.cfg
        level = self.level
        with self._autocast():
            with torch.no_grad():
                f_c = self.encoder(content, [level])[level]
                f_s = self.encoder(style, self.layers)
                target = adain(f_c.float(), f_s[level].float())
            output = self.model(target)
            f_y = self.encoder(output, self.layers)
        f_y, f_s_sc = self._scaled(f_y), self._scaled(f_s)
        out: dict[str, torch.Tensor] = {}
        out["content"] = content_loss(f_y[level], target / cfg.layer_scales[level])
        if cfg.style_loss == "meanstd":
            out["style"] = sum(mean_std_loss(f_y[l], f_s_sc[l]) for l in self.layers)
        else:
            out["style"] = sum(gram_style_loss(f_y[l], gram_matrix(f_s_sc[l])) for l in self.layers)
        total = cfg.content_weight * out["content"] + cfg.style_weight * out["style"]
        if cfg.tv_weight > 0:
            out["tv"] = total_variation(output)
            total = total + cfg.tv_weight * out["tv"]
        if self.disc is not None:
            # the plain module, not the DDP wrapper: this pass only needs gradients w.r.t. ``output``
            with self._autocast():
                out["adv"] = g_loss(self.disc(output).float(), cfg.gan_loss)
            total = total + cfg.gan_weight * out["adv"]
        if cfg.identity_weight > 0:
            half = content[: max(1, content.shape[0] // 2)]
            out["identity"] = self.reconstruction_losses(half)[0]["total"]
            total = total + cfg.identity_weight * out["identity"]
        out["total"] = total
        return out, output

    def in_warmup(self) -> bool:
        """True while the next step is a reconstruction (warm-up) step."""
        return self.step < self.cfg.warmup_steps

    def train_step(self) -> dict[str, float]:
        """Sample a batch, update the decoder (and the discriminator if on); returns float losses."""
        cfg = self.cfg
        lr = cfg.lr / (1.0 + cfg.lr_decay * self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        content = self._prep(self.content.sample(cfg.batch_size, self.gen))
        if self.in_warmup():
            losses, _ = self.reconstruction_losses(content)
            self._update(self.opt, losses["total"])
            return self._finish_step(losses, lr)
        style = self._prep(self.style.sample(cfg.batch_size, self.gen))
        if self.disc is not None:
            self.disc.requires_grad_(False)  # the decoder step must not touch D's weights
        losses, output = self.losses(content, style)
        self._update(self.opt, losses["total"])
        if self.disc is not None:
            self.disc.requires_grad_(True)
            with self._autocast():  # one forward for both halves (DDP-friendly)
                logits = self.disc_model(torch.cat([style, output.detach()])).float()
            real, fake = logits.chunk(2)
            losses["disc"] = d_loss(real, fake, cfg.gan_loss)
            self._update(self.opt_d, losses["disc"])
        return self._finish_step(losses, lr)

    def _update(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # scale/step/update are plain backward/step without fp16
        self.scaler.step(opt)

    def _finish_step(self, losses: dict[str, torch.Tensor], lr: float) -> dict[str, float]:
        self.scaler.update()  # once per iteration, after every optimiser stepped
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
        """A grid image: one row per pair, columns content | style | reconstruction | AdaIN output."""
        c, s = self.samples
        with self._autocast():
            f_c = self.encoder(self._prep(c), [self.level])[self.level].float()
            f_s = self.encoder(self._prep(s), [self.level])[self.level].float()
            rec = self.decoder(f_c).float().cpu().clamp(0, 1)
            y = self.decoder(adain(f_c, f_s)).float().cpu().clamp(0, 1)
        rows = [torch.cat([c[i], s[i], rec[i], y[i]], dim=2) for i in range(c.shape[0])]
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
            t, m = ckpt.network_tensors("disc", self.disc, self.opt_d)
            tensors.update(t)
            meta.update(m)
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
        """Write the decoder (what ``--model`` loads), optionally in fp16; a decoder trained on a
        student encoder carries it (in float32), so the file runs on its own."""
        sd = {f"decoder.{k}": (v.half() if half and v.is_floating_point() else v)
              for k, v in self.decoder.state_dict().items()}
        if self.cfg.student:
            from ..encoders.student import student_tensors

            sd.update({k: v.float() for k, v in student_tensors(self.encoder).items()})
        meta = {"decoder": self.decoder.config, "encoder": self.encoder_meta(),
                "step": self.step, "train": {k: v for k, v in dataclasses.asdict(self.cfg).items()
                                              if k not in ("layer_scales",)}}
        return ckpt.atomic_save(sd, path, meta)

    def encoder_meta(self) -> dict[str, Any]:
        """What a model file records of its encoder, checked when it is loaded."""
        return {"name": "vgg19", "layer": self.level, "normalization": self.encoder.normalization,
                "pooling": self.encoder.pooling, "width_divisor": self.encoder.width_divisor,
                "last_layer": getattr(self.encoder, "last_layer", "pool5")}

    def _check_resumable(self, saved: dict[str, Any]) -> None:
        """A resume must build the same networks as the run it continues."""
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        for name in ARCH_FIELDS:
            old, new = saved.get(name, defaults[name]), getattr(self.cfg, name)
            if old != new:
                flag = "--" + name.replace("_", "-")
                raise StyleTransferError(f"{self.ckpt_path} was trained with {flag} {old}, not {new}: "
                                         f"resume with {flag} {old} or start a new --out")

    def _restore(self) -> None:
        tensors, meta = ckpt.load(self.ckpt_path)
        if meta.get("world_size", 1) != self.world:
            raise StyleTransferError(
                f"{self.ckpt_path} was written by {meta.get('world_size', 1)} process(es); resume with the same count")
        self.decoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")})
        ckpt.restore_optimizer("decoder", self.opt, tensors, meta["opt.decoder"])
        if self.disc is not None:
            ckpt.restore_network("disc", self.disc, self.opt_d, tensors, meta,
                                 f"{self.ckpt_path} has no discriminator: resume without --gan-weight")
        self.gen.set_state(tensors[f"rng.data.{self.rank}"])
        torch.set_rng_state(tensors[f"rng.torch.{self.rank}"])
        self.step = int(meta["step"])
        if self.rank == 0:
            truncate_metrics(self.out / "metrics.csv", self.step)

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
            if all_ranks_agree(not math.isfinite(last["total"]), self.device):
                raise StyleTransferError(f"loss became {last['total']} at step {self.step}; lower --lr")
            bar.update(1)
            bar.set_postfix({k: f"{running[k]:.3g}" for k in ("pixel", "content", "style", "adv", "disc")
                             if k in last})
            if self.rank == 0 and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                append_metrics(metrics_path, self.step, last)
            out_of_time = all_ranks_agree(
                cfg.max_minutes is not None and (time.monotonic() - start) > cfg.max_minutes * 60, self.device)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or out_of_time:
                self.save_checkpoint()
            if self.rank == 0 and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                self.write_samples()
            if out_of_time:
                break
        bar.close()
        return last
