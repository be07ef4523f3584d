"""Feed-forward ("fast") style transfer with AdaIN: any style in one pass.

    content (1,3,H,W) --VGG19 to relu4_1--> f_c (1,512,H/8,W/8)
    style_k           --VGG19 to relu4_1--> mean/std statistics (1,512,1,1)
    t = sum_k m_k * AdaIN(f_c, style_k)      m_k = interpolation weight or spatial mask
    t = alpha * t + (1 - alpha) * f_c
    output = Decoder(t)                      (1,3,H,W)

Big images (4K) are done in tiles without seams: the encoder runs on overlapping tiles whose
halo (64 px) covers the receptive field of relu4_1, so the stitched feature map equals the
full-image one away from the image border; AdaIN uses statistics of the *whole* feature map (so
every tile gets the same colour shift); the decoder then runs on overlapping feature tiles and
only the centres are kept. Peak memory is set by the tile size, not the image size.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.resources
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..device import resolve_device
from ..encoders import vgg19
from ..encoders.vgg import VGG19Encoder
from ..errors import StyleTransferError
from ..image import fit_size, match_color, resize, transfer_luminance
from ..losses import mean_std
from ..models import Decoder, adain_stats
from .. import checkpoint as ckpt

BUILTIN_MODEL = "adain_decoder.safetensors"
LAYER = "relu4_1"
ENCODER_HALO = 64  # px; relu4_1 sees ~68 px, and zero padding reaches ~34 px into a tile
DECODER_HALO = 8  # feature px (= 64 image px); the decoder's receptive field is ~7 feature px
STYLE_SIZE = 512  # styles are read at this longest side, as in AdaIN's training


@dataclass
class FastOptions:
    """Options of :func:`stylize_fast`.

    Attributes:
        alpha: content/style trade-off in [0, 1] (0 = content features, 1 = full style).
        style_weights: interpolation weights of several styles (normalised to sum 1).
        masks: one (1, 1, H, W) mask in [0, 1] per style for spatial control.
        preserve_color: ``None``, ``"luminance"`` (stylized luminance + content chroma) or
            ``"histogram"`` (styles recoloured to the content's colour statistics first).
        tile: tile side in pixels; ``None`` = automatic (whole image up to 1024^2 pixels).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        model: path of a decoder ``model.safetensors``; ``None`` = the built-in model.
    """

    alpha: float = 1.0
    style_weights: list[float] | None = None
    masks: list[torch.Tensor] | None = None
    preserve_color: str | None = None
    tile: int | None = None
    device: str = "auto"
    model: str | None = None

    def validate(self, n_styles: int) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise StyleTransferError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.style_weights is not None:
            if len(self.style_weights) != n_styles:
                raise StyleTransferError(f"{len(self.style_weights)} style weights for {n_styles} style(s)")
            if any(w < 0 for w in self.style_weights) or sum(self.style_weights) <= 0:
                raise StyleTransferError("style weights must be >= 0 and not all zero")
        if self.masks is not None and len(self.masks) != n_styles:
            raise StyleTransferError(f"{len(self.masks)} mask(s) for {n_styles} style(s): give one per style")
        if self.preserve_color not in (None, "luminance", "histogram"):
            raise StyleTransferError(f"preserve_color must be luminance or histogram, got {self.preserve_color!r}")
        if self.tile is not None and self.tile < 128:
            raise StyleTransferError(f"tile must be at least 128 px, got {self.tile}")


def builtin_model_path() -> Path:
    return Path(str(importlib.resources.files("styletransfer").joinpath("assets", BUILTIN_MODEL)))


def default_model_available() -> bool:
    """True when the package ships a trained decoder."""
    return builtin_model_path().is_file()


@functools.lru_cache(maxsize=4)
def load_decoder(path: str | None = None, device: str = "cpu") -> Decoder:
    """Load a decoder saved by the trainer (``model.safetensors`` or a checkpoint); cached."""
    file = Path(path) if path else builtin_model_path()
    if path is None and not file.is_file():
        raise StyleTransferError("this installation has no built-in fast model; use --method optimize or --model FILE")
    tensors, meta = ckpt.load(file)
    if "decoder" in meta:
        cfg = meta["decoder"]
    elif "config" in meta:  # a training checkpoint
        tc = meta["config"]
        cfg = {"in_channels": 512, "width": tc["decoder_width"], "input_scale": tc["layer_scales"][LAYER]}
    else:
        raise StyleTransferError(f"{file}: not a styletransfer decoder (no config in its metadata)")
    dec = Decoder(int(cfg["in_channels"]), float(cfg["width"]), float(cfg["input_scale"]))
    state = {k[len("decoder."):]: v.float() for k, v in tensors.items() if k.startswith("decoder.")}
    try:
        dec.load_state_dict(state)
    except RuntimeError as exc:
        raise StyleTransferError(f"{file}: decoder weights do not match its config ({str(exc).splitlines()[0]})") from None
    return dec.to(device).eval().requires_grad_(False)


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def _tiles(length: int, tile: int, halo: int, step: int = 1):
    """Yield (start, stop, keep_start, keep_stop) covering [0, length) with overlapping halos.

    ``start/stop`` is the window to compute (multiples of ``step``), ``keep`` the part of it to
    keep (absolute coordinates); kept parts tile [0, length) exactly once.
    """
    if length <= tile:
        yield 0, length, 0, length
        return
    pos = 0
    while pos < length:
        keep_stop = min(pos + tile, length)
        start = max(0, pos - halo)
        stop = min(length, keep_stop + halo)
        yield start // step * step, -(-stop // step) * step if stop < length else length, pos, keep_stop
        pos = keep_stop


@torch.no_grad()
def encode_tiled(encoder: VGG19Encoder, image: torch.Tensor, tile: int) -> torch.Tensor:
    """relu4_1 features of an image whose sides are multiples of 8, computed tile by tile."""
    _, _, h, w = image.shape
    if h * w <= tile * tile:
        return encoder(image, [LAYER])[LAYER]
    out = None
    for y0, y1, ky0, ky1 in _tiles(h, tile, ENCODER_HALO, 8):
        for x0, x1, kx0, kx1 in _tiles(w, tile, ENCODER_HALO, 8):
            f = encoder(image[..., y0:y1, x0:x1], [LAYER])[LAYER]
            if out is None:
                out = f.new_empty(1, f.shape[1], h // 8, w // 8)
            out[..., ky0 // 8: ky1 // 8, kx0 // 8: kx1 // 8] = \
                f[..., (ky0 - y0) // 8: (ky1 - y0) // 8, (kx0 - x0) // 8: (kx1 - x0) // 8]
    return out


@torch.no_grad()
def decode_tiled(decoder: Decoder, features: torch.Tensor, tile: int) -> torch.Tensor:
    """Decode a feature map tile by tile (``tile`` in image px); returns (1, 3, 8h, 8w)."""
    _, _, h, w = features.shape
    ft = max(16, tile // 8)
    if h * w <= ft * ft:
        return decoder(features)
    out = features.new_empty(1, 3, h * 8, w * 8)
    for y0, y1, ky0, ky1 in _tiles(h, ft, DECODER_HALO):
        for x0, x1, kx0, kx1 in _tiles(w, ft, DECODER_HALO):
            y = decoder(features[..., y0:y1, x0:x1])
            out[..., ky0 * 8: ky1 * 8, kx0 * 8: kx1 * 8] = \
                y[..., (ky0 - y0) * 8: (ky1 - y0) * 8, (kx0 - x0) * 8: (kx1 - x0) * 8]
    return out


_STATS_CACHE: "OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]]" = OrderedDict()
_STATS_CACHE_SIZE = 32


def _style_stats(encoder: VGG19Encoder, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """relu4_1 channel mean/std of a style, cached by content hash (a server reuses its styles)."""
    digest = hashlib.blake2b(style.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()
    key = (id(encoder), str(style.device), tuple(style.shape), digest)
    if key in _STATS_CACHE:
        _STATS_CACHE.move_to_end(key)
        return _STATS_CACHE[key]
    h, w = style.shape[-2:]
    if max(h, w) > STYLE_SIZE:
        style = resize(style, fit_size(h, w, size=STYLE_SIZE))
    style, _ = _pad_to(style, 8)
    stats = mean_std(encoder(style.contiguous(memory_format=torch.channels_last), [LAYER])[LAYER])
    _STATS_CACHE[key] = stats
    if len(_STATS_CACHE) > _STATS_CACHE_SIZE:
        _STATS_CACHE.popitem(last=False)
    return stats


def target_features(
    f_c: torch.Tensor, stats: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float],
    masks: list[torch.Tensor] | None, alpha: float,
) -> torch.Tensor:
    """Blend AdaIN targets of several styles (by weights, or spatially by masks), then alpha.

    With masks, each position gets ``sum_k m_k(p) AdaIN_k(p) / sum_k m_k(p)`` (positions no mask
    covers keep the content features); without, ``sum_k w_k AdaIN_k`` (Huang & Belongie, sec. 7).
    """
    if masks is None:
        t = sum(w * adain_stats(f_c, m, s) for w, (m, s) in zip(weights, stats))
    else:
        ms = [resize(m.float().to(f_c.device), f_c.shape[-2:]).clamp(0, 1) for m in masks]
        total = sum(ms)
        t = sum(m * adain_stats(f_c, mu, sd) for m, (mu, sd) in zip(ms, stats))
        t = torch.where(total > 1e-6, t / total.clamp_min(1e-6), f_c)
    return alpha * t + (1.0 - alpha) * f_c


@torch.no_grad()
def stylize_fast(
    content: torch.Tensor,
    styles: list[torch.Tensor],
    options: FastOptions | None = None,
    encoder: VGG19Encoder | None = None,
    decoder: Decoder | None = None,
) -> torch.Tensor:
    """Stylize ``content`` with one or more ``styles`` in a single forward pass.

    Args:
        content: (1, 3, H, W) RGB in [0, 1].
        styles: list of (1, 3, H_k, W_k) RGB in [0, 1].
        options: see :class:`FastOptions`.
        encoder, decoder: override the pretrained VGG19 / built-in decoder (tests use tiny ones).

    Returns:
        (1, 3, H, W) in [0, 1]; the caller's tensors are not modified.
    """
    opts = options or FastOptions()
    if not styles:
        raise StyleTransferError("at least one style image is needed")
    opts.validate(len(styles))
    device = resolve_device(opts.device)
    encoder = (encoder or vgg19(device=device)).to(device)
    decoder = (decoder or load_decoder(opts.model, str(device))).to(device)
    content = content.to(device, torch.float32)
    styles = [s.to(device, torch.float32) for s in styles]
    if opts.preserve_color == "histogram":
        styles = [match_color(s, content) for s in styles]
    tile = (opts.tile or 1024) // 8 * 8
    padded, (h, w) = _pad_to(content, 8)
    # channels_last: ~30% faster convolutions on x86 CPUs (measured: VGG19 to relu4_1 at 512^2,
    # 1.33 s -> 0.95 s); the decoder inherits the layout from its input.
    f_c = encode_tiled(encoder, padded.contiguous(memory_format=torch.channels_last), tile)
    stats = [_style_stats(encoder, s) for s in styles]
    weights = opts.style_weights or [1.0] * len(styles)
    weights = [wt / sum(weights) for wt in weights]
    masks = None
    if opts.masks is not None:
        masks = [F.pad(resize(m, (h, w)), (0, padded.shape[-1] - w, 0, padded.shape[-2] - h), mode="replicate")
                 for m in opts.masks]
    t = target_features(f_c, stats, weights, masks, opts.alpha)
    del f_c
    out = decode_tiled(decoder, t, tile)[..., :h, :w].clamp(0, 1)
    if opts.preserve_color == "luminance":
        out = transfer_luminance(out, content)
    return out.cpu()
