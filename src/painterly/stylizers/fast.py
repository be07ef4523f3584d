"""Feed-forward ("fast") style transfer: any style, no optimisation, a few network passes.

Single level (AdaIN, Huang & Belongie, 2017)::

    content (1,3,H,W) --VGG19 to relu4_1--> f_c (1,512,H/8,W/8)
    style_k           --VGG19 to relu4_1--> statistics of style k
    t = sum_k m_k * T(f_c, style_k)          m_k = interpolation weight or spatial mask
    t = alpha * t + (1 - alpha) * f_c
    output = Decoder_relu4_1(t)              (1,3,H,W)

with the feature transform ``T`` = AdaIN (match each channel's mean/std) or WCT (whitening and
colouring: match the mean and the whole covariance; Li et al., 2017, see ``models/wct.py``).

Multi-level (Universal Style Transfer, Li et al., 2017, fig. 2): the same step at relu4_1, then
relu3_1, relu2_1, relu1_1, each level encoding the previous level's *output image* and decoding it
with that level's decoder. The deep level moves large structures and colours, the shallow ones
add the style's finer textures. Each level's decoder is trained only to invert the encoder
(reconstruction), which converges in hundreds of steps on a CPU, where a decoder trained with
AdaIN's style losses needs tens of thousands (see ``training/trainer.py``).

A model file holds one decoder (``decoder.*`` tensors, what ``train`` writes) or several
(``<level>.*`` tensors, a bundle: the built-in model). The levels run are those of the model,
deepest first, unless :attr:`FastOptions.levels` picks some.

Big images (4K) are done in tiles without seams: the encoder runs on overlapping tiles whose
halo (64 px) covers the receptive field of relu4_1, so the stitched feature map equals the
full-image one away from the image border; the transforms use statistics of the *whole* feature
map (so every tile gets the same colour shift); the decoder then runs on overlapping feature
tiles and only the centres are kept. Peak memory is set by the tile size, not the image size
(apart from the feature maps themselves).
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..device import autocast, resolve_device
from ..encoders import vgg19
from ..encoders.vgg import VGG19Encoder
from ..errors import StyleTransferError
from ..image import PRESERVE_COLORS, fit_size, match_color, resize, transfer_luminance
from ..losses import mean_std
from ..models import Decoder, adain_affine
from ..models.decoder import LEVELS, by_level, deepest_first
from ..models.wct import apply_affine, wct_affine, wct_style_stats
from .fast_model import (  # noqa: F401 - the model-file API, re-exported for callers of this module
    BUILTIN_MODELS, TRANSFORMS, FastModel, builtin_model_path, check_encoder, check_model_arg, check_transform,
    default_model_available, read_model, resolve_model_path, save_bundle,
)
from .weights import blend_weights, check_style_weights
from .tiles import (  # noqa: F401 - re-exported: the tiling is part of this pipeline
    DECODER_HALO, ENCODER_HALO, MARGIN, _pad_to, _tiles, _with_margin, decode_tiled, encode_tiled,
)

LAYER = "relu4_1"
BACKENDS = ("torch", "onnxruntime")  # where the networks run
# "mixed": AdaIN where structure lives (the deep levels), WCT where texture lives (the shallow ones)
MIXED = {"relu4_1": "adain", "relu3_1": "adain", "relu2_1": "wct", "relu1_1": "wct"}


def level_transform(transform: str, level: str) -> str:
    """The transform a level runs: ``transform`` itself, or for ``"mixed"`` AdaIN at relu4_1 and
    relu3_1, WCT at relu2_1 and relu1_1.

    Examples:
        >>> level_transform("mixed", "relu1_1"), level_transform("mixed", "relu4_1"), level_transform("wct", "relu4_1")
        ('wct', 'adain', 'wct')
    """
    return MIXED[level] if transform == "mixed" else transform


STYLE_SIZE = 512  # styles are read at this longest side, as in AdaIN's training


@dataclass
class FastOptions:
    """Options of :func:`stylize_fast`.

    Attributes:
        alpha: content/style trade-off in [0, 1] (0 = content features, 1 = full style).
        transform: ``None`` = the model's own (the one its decoders were tuned with: ``"mixed"``
            for the built-in slim model; ``"adain"`` for a model that names none), ``"adain"``
            (matches channel means/stds: the photo stays readable), ``"wct"`` (whitening-colouring:
            matches the style's feature covariance: stronger, wilder textures) or ``"mixed"``
            (AdaIN at relu4_1/relu3_1, where structure lives; WCT at relu2_1/relu1_1, where
            texture lives).
        levels: encoder levels to run, deepest first (e.g. ``["relu4_1", "relu2_1"]``);
            ``None`` = every level the model has.
        style_weights: interpolation weights of several styles (normalised to sum 1).
        masks: one (1, 1, H, W) mask in [0, 1] per style for spatial control.
        preserve_color: ``None``, ``"luminance"`` (stylized luminance + content chroma) or
            ``"histogram"`` (styles recoloured to the content's colour statistics first).
        tile: tile side in pixels; ``None`` = automatic (whole image up to 1024^2 pixels).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        model: path of a model file (one decoder or a bundle), or a built-in model's name
            (``"slim"``, ``"large"``); ``None`` = the default built-in model.
        backend: ``"torch"``, or ``"onnxruntime"`` (every level's encoder and decoder exported
            to ONNX once and run by onnxruntime on the CPU; see ``painterly.export``).
        amp: run the networks in bf16 autocast where it pays off: CPUs with native bf16
            (AVX512-BF16/AMX, 3-4x), CUDA; elsewhere (AVX2 CPUs, where bf16 is emulated and
            10-50x slower) this does nothing. Style statistics, transforms and the output stay
            float32.
    """

    alpha: float = 1.0
    transform: str | None = None
    levels: list[str] | None = None
    style_weights: list[float] | None = None
    masks: list[torch.Tensor] | None = None
    preserve_color: str | None = None
    tile: int | None = None
    device: str = "auto"
    model: str | None = None
    backend: str = "torch"
    amp: bool = True

    def validate(self, n_styles: int) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise StyleTransferError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.transform is not None:
            check_transform(self.transform)
        if self.levels is not None:
            bad = [lv for lv in self.levels if lv not in LEVELS]
            if bad or not self.levels:
                raise StyleTransferError(f"levels must be some of {', '.join(LEVELS)}, got {self.levels}")
        check_style_weights(self.style_weights, n_styles)
        if self.masks is not None and len(self.masks) != n_styles:
            raise StyleTransferError(f"{len(self.masks)} mask(s) for {n_styles} style(s): give one per style")
        if self.preserve_color not in (None, *PRESERVE_COLORS):
            raise StyleTransferError(f"preserve_color must be luminance or histogram, got {self.preserve_color!r}")
        if self.backend not in BACKENDS:
            raise StyleTransferError(f"backend must be torch or onnxruntime, got {self.backend!r}")
        if self.tile is not None and self.tile < 128:
            raise StyleTransferError(f"tile must be at least 128 px, got {self.tile}")


def style_statistics(encoder: VGG19Encoder, style: torch.Tensor, layer: str = LAYER,
                     transform: str = "adain") -> tuple[torch.Tensor, torch.Tensor]:
    """A style's statistics at ``layer``: AdaIN's channel (mean, std), each (1, C, 1, 1), or WCT's
    (mean (C, 1), colouring matrix (C, C)). Styles are read at :data:`STYLE_SIZE`."""
    return level_statistics(encoder, style, {layer: transform})[layer]


def level_statistics(encoder: VGG19Encoder, style: torch.Tensor, kinds: Mapping[str, str]
                     ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """:func:`style_statistics` at several levels, each with its own transform (``{level:
    "adain" | "wct"}``), from one encoder pass (the style is encoded once to the deepest level,
    not once per level or per transform: 4x less work for a four-level model)."""
    h, w = style.shape[-2:]
    if max(h, w) > STYLE_SIZE:
        style = resize(style, fit_size(h, w, size=STYLE_SIZE))
    style, _ = _pad_to(style, 8)
    feats = encoder(style.contiguous(memory_format=torch.channels_last), list(kinds))
    return {lv: (mean_std if kind == "adain" else wct_style_stats)(feats[lv]) for lv, kind in kinds.items()}


def affine_map(f_c: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor], transform: str
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One style's transform of content features as an affine map ``(A, b)``: for AdaIN a
    per-channel scale and shift, each (1, C, 1, 1); for WCT a (C, C) matrix and a (C, 1) shift."""
    if transform == "adain":
        return adain_affine(f_c, *stats)
    return wct_affine(f_c, *stats)


def _apply(f_c: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.ndim == 4:  # per-channel (AdaIN)
        return torch.addcmul(b, f_c.float(), a).to(f_c.dtype)
    return apply_affine(f_c, a, b).to(f_c.dtype)


def transform_features(f_c: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor], transform: str) -> torch.Tensor:
    """One style's transform of content features: AdaIN or WCT with precomputed style statistics."""
    return _apply(f_c, *affine_map(f_c, stats, transform))


def target_features(
    f_c: torch.Tensor, stats: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float],
    masks: list[torch.Tensor] | None, alpha: float, transform: str = "adain",
) -> torch.Tensor:
    """Blend the transformed features of several styles (by weights, or spatially by masks), then alpha.

    With masks, each position gets ``sum_k m_k(p) T_k(p) / sum_k m_k(p)`` (positions no mask
    covers keep the content features); without, ``sum_k w_k T_k`` (Huang & Belongie, sec. 7;
    Li et al., sec. 4). Without masks every ``T_k`` is affine, so the blend of the styles and
    alpha is itself one affine map, ``alpha * sum_k w_k (A_k f + b_k) + (1 - alpha) f``, applied in
    a single pass over the features.
    """
    if masks is None:
        maps = [affine_map(f_c, st, transform) for st in stats]
        a = sum(w * m[0] for w, m in zip(weights, maps)) * alpha
        b = sum(w * m[1] for w, m in zip(weights, maps)) * alpha
        identity = torch.ones_like(a) if a.ndim == 4 else torch.eye(a.shape[0], device=a.device)
        return _apply(f_c, a + (1.0 - alpha) * identity, b)
    ms = [resize(m.float().to(f_c.device), f_c.shape[-2:]).clamp(0, 1) for m in masks]
    total = sum(ms)
    t = sum(m * transform_features(f_c, st, transform) for m, st in zip(ms, stats))
    t = torch.where(total > 1e-6, t / total.clamp_min(1e-6), f_c)
    return alpha * t + (1.0 - alpha) * f_c


def _device_of(module) -> torch.device:
    param = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
    return param.device if param is not None else torch.device("cpu")


def plan_levels(available: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The levels to run, deepest first; a wanted level the model lacks is an error."""
    if wanted is not None:
        missing = [lv for lv in wanted if lv not in available]
        if missing:
            raise StyleTransferError(f"the model has no decoder for {', '.join(missing)} (it has {', '.join(available)})")
        chosen = list(wanted)
    else:
        chosen = list(available)
    return deepest_first(chosen)


class FastStylizer:
    """The fast pipeline: an encoder, a decoder per level and a cache of style statistics, built
    once (:meth:`from_model`) and called for each picture. The CLI, the web engine, video, the
    export and the onnxruntime backend each hold one.

    Args:
        encoder: the frozen encoder (the full VGG19, a model's student, a tiny stand-in in tests,
            or onnxruntime sessions with the same call).
        decoders: ``{level: decoder}`` (or one decoder: its level is read from it).
        model_path: the file the networks came from, if any (shown to users, exported by the web).
        backend: ``"torch"`` or ``"onnxruntime"`` (what the networks are; informational).
        transform: the transform run when the options name none (a model's own, see
            :attr:`FastOptions.transform`).

    Examples:
        >>> from painterly.models import Decoder
        >>> st = FastStylizer(VGG19Encoder(width_divisor=16), {"relu4_1": Decoder(32, 0.125)})
        >>> st(torch.rand(1, 3, 40, 48), [torch.rand(1, 3, 32, 32)], FastOptions(alpha=0.5)).shape
        torch.Size([1, 3, 40, 48])
    """

    STATS_CACHE_SIZE = 128  # entries: one per (style, level)

    def __init__(self, encoder, decoders: Decoder | Mapping[str, Decoder], *, model_path: str | Path | None = None,
                 backend: str = "torch", transform: str = "adain") -> None:
        check_transform(transform)
        self.transform = transform
        self.encoder = encoder
        self.device = _device_of(encoder)
        self.decoders = {lv: d.to(self.device) if hasattr(d, "to") else d for lv, d in by_level(decoders).items()}
        self.model_path = Path(model_path) if model_path else None
        self.backend = backend
        self._stats: OrderedDict = OrderedDict()
        self._stats_lock = threading.Lock()  # threads may share one stylizer (painterly batch)

    @classmethod
    def from_model(cls, model: str | Path | None = None, device: str | torch.device = "auto",
                   backend: str = "torch", encoder: VGG19Encoder | None = None,
                   threads: int | None = None) -> "FastStylizer":
        """Load a model file (``None``: the default built-in model; ``"slim"``, ``"large"``, or a
        path) with the encoder it needs: its own student if it carries one, else the full
        pretrained VGG19 (or ``encoder``, checked against the model's settings). ``backend=
        "onnxruntime"`` runs every network in onnxruntime on the CPU (exported once, cached)."""
        fm = read_model(model)
        if backend not in BACKENDS:
            raise StyleTransferError(f"backend must be torch or onnxruntime, got {backend!r}")
        dev = torch.device("cpu") if backend == "onnxruntime" else resolve_device(device)
        enc = encoder if encoder is not None else fm.encoder if fm.encoder is not None else vgg19(device=dev)
        check_encoder(enc, fm.settings, str(model or "the built-in model"))
        if fm.encoder is not None and encoder is not None:
            raise StyleTransferError(f"{fm.path} carries its own student encoder: pass no encoder with it")
        stylizer = cls(enc.to(dev), {lv: d.to(dev) for lv, d in fm.decoders.items()}, model_path=fm.path,
                       transform=fm.transform or "adain")
        return stylizer.to_onnxruntime(threads) if backend == "onnxruntime" else stylizer

    def to_onnxruntime(self, threads: int | None = None) -> "FastStylizer":
        """The same pipeline with every level's encoder and decoder exported to ONNX (once, into
        the cache) and run by onnxruntime on the CPU; the feature transforms stay in torch."""
        from .onnx_backend import onnx_networks

        enc, decs = onnx_networks(self.encoder, self.decoders, threads)
        return type(self)(enc, decs, model_path=self.model_path, backend="onnxruntime", transform=self.transform)

    @property
    def levels(self) -> list[str]:
        """The model's levels, deepest first."""
        return deepest_first(self.decoders)

    def style_statistics(self, style: torch.Tensor, level: str = LAYER, transform: str = "adain"):
        """:func:`style_statistics` of ``style``, cached by content (a server reuses its styles)."""
        return self.level_statistics(style, {level: transform})[level]

    def level_statistics(self, style: torch.Tensor, kinds: Mapping[str, str]):
        """``{level: statistics}`` of ``style`` for ``{level: transform}`` (:func:`level_statistics`:
        one encoder pass for the levels not cached yet), cached by content."""
        digest = hashlib.blake2b(style.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()
        keys = {lv: (lv, kind, str(style.device), tuple(style.shape), digest) for lv, kind in kinds.items()}
        with self._stats_lock:  # the batch command's threads share one stylizer
            missing = {lv: kinds[lv] for lv, k in keys.items() if k not in self._stats}
        if missing:
            computed = level_statistics(self.encoder, style, missing)
        with self._stats_lock:
            for lv in missing:
                self._stats[keys[lv]] = computed[lv]
            out = {}
            for lv, k in keys.items():
                self._stats.move_to_end(k)
                out[lv] = self._stats[k]
            while len(self._stats) > self.STATS_CACHE_SIZE:
                self._stats.popitem(last=False)
        return out

    @torch.no_grad()
    def __call__(self, content: torch.Tensor, styles: list[torch.Tensor], options: FastOptions | None = None,
                 progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Stylize ``content`` (1, 3, H, W) in [0, 1] with ``styles``; returns (1, 3, H, W) on the
        CPU. ``options.model``, ``device`` and ``backend`` are the stylizer's own and ignored."""
        opts = options or FastOptions()
        if not styles:
            raise StyleTransferError("at least one style image is needed")
        opts.validate(len(styles))
        device = self.device
        levels = plan_levels(list(self.decoders), opts.levels)
        content = content.to(device, torch.float32)
        styles = [s.to(device, torch.float32) for s in styles]
        if opts.preserve_color == "histogram":
            styles = [match_color(s, content) for s in styles]
        tile = (opts.tile or 1024 + 2 * MARGIN) // 8 * 8  # a 1024^2 photo and its margin: one tile
        x, (h, w), m = _with_margin(content)
        weights = blend_weights(opts.style_weights, len(styles))
        masks = None
        if opts.masks is not None:
            masks = [F.pad(resize(mk, (h, w)), (m, x.shape[-1] - w - m, m, x.shape[-2] - h - m), mode="replicate")
                     for mk in opts.masks]
        kinds = {lv: level_transform(opts.transform or self.transform, lv) for lv in levels}
        all_stats = [self.level_statistics(s, kinds) for s in styles]  # per style {level: stats}, float32, cached
        for i, level in enumerate(levels):
            # channels_last: ~30% faster convolutions on x86 CPUs (measured: VGG19 to relu4_1 at 512^2,
            # 1.33 s -> 0.95 s); the decoder inherits the layout from its input.
            with autocast(device, opts.amp):  # bf16 where the CPU has it natively, else a no-op
                f_c = encode_tiled(self.encoder, x.contiguous(memory_format=torch.channels_last), tile, level)
            stats = [st[level] for st in all_stats]
            t = target_features(f_c, stats, weights, masks, opts.alpha, kinds[level])
            del f_c
            with autocast(device, opts.amp):
                x = decode_tiled(self.decoders[level], t, tile).clamp(0, 1)
            del t
            if progress is not None:
                progress(i + 1, len(levels))
        out = x[..., m: m + h, m: m + w].float()
        if opts.preserve_color == "luminance":
            out = transfer_luminance(out, content)
        return out.cpu()


_LAST: dict[tuple, FastStylizer] = {}


def _shared_stylizer(model: str | None, device: str, backend: str) -> FastStylizer:
    """The stylizer of :func:`stylize_fast`'s convenience path, kept for the next call with the same
    model file (same path, size and modification time), device and backend."""
    path = resolve_model_path(model)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(device), backend)
    if key not in _LAST:
        _LAST.clear()  # one at a time: a model is tens of MB
        _LAST[key] = FastStylizer.from_model(model, device, backend)
    return _LAST[key]


def stylize_fast(
    content: torch.Tensor,
    styles: list[torch.Tensor],
    options: FastOptions | None = None,
    encoder: VGG19Encoder | None = None,
    decoder: Decoder | Mapping[str, Decoder] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Stylize ``content`` with one or more ``styles`` in one pass per level: a
    :class:`FastStylizer` of ``options.model`` (or of the given networks), called once.

    Args:
        content: (1, 3, H, W) RGB in [0, 1].
        styles: list of (1, 3, H_k, W_k) RGB in [0, 1].
        options: see :class:`FastOptions`.
        encoder: override the encoder (tests use a tiny one); used where it is (its device is not
            changed).
        decoder: a decoder, or ``{level: decoder}``, instead of the model file's.
        progress: ``progress(done, total)`` after each level.

    Returns:
        (1, 3, H, W) in [0, 1] on the CPU; the caller's tensors are not modified.
    """
    opts = options or FastOptions()
    if not styles:
        raise StyleTransferError("at least one style image is needed")
    opts.validate(len(styles))
    if encoder is None and decoder is None:
        stylizer = _shared_stylizer(opts.model, opts.device, opts.backend)
    elif decoder is None:
        stylizer = FastStylizer.from_model(opts.model, _device_of(encoder), encoder=encoder)
    else:
        stylizer = FastStylizer(encoder if encoder is not None else vgg19(device=resolve_device(opts.device)), decoder)
    return stylizer(content, styles, opts, progress)
