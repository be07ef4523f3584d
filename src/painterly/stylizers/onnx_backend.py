"""The onnxruntime backend of the fast mode: every level's encoder and decoder exported to ONNX
once (into a cache folder keyed by a hash of the weights) and run by onnxruntime on the CPU,
wrapped so :class:`~painterly.stylizers.fast.FastStylizer` calls them as it calls the torch
networks (tiles, masks, several styles, WCT: the feature transforms stay in torch).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..atomic import atomic_folder
from ..errors import StyleTransferError
from ..models.decoder import by_level, deepest_first
from .graphs import FORMAT_VERSION, EncoderGraph
from .tiles import LAYER

DEFAULT_OPSET = 17
CACHE_ENV = "PAINTERLY_CACHE"

__all__ = ["CACHE_ENV", "DEFAULT_OPSET", "OrtDecoder", "OrtEncoder", "cache_dir", "onnx_networks", "torch_export"]


def _onnx():
    try:
        import onnx
    except ImportError:
        raise StyleTransferError("ONNX export needs the 'onnx' package: pip install 'painterly[onnx]'") from None
    return onnx


def torch_export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
                  dynamic: dict[str, dict[int, str]], opset: int) -> None:
    """TorchScript-based exporter: ~20x quicker than the dynamo one here, same numbers."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise StyleTransferError("the onnxruntime backend needs the 'onnxruntime' package: "
                                 "pip install 'painterly[onnx]'") from None
    return onnxruntime


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                     os.path.expanduser("~/.cache"), "painterly")
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
        torch_export(EncoderGraph(encoder, level), (torch.rand(1, 3, 48, 64),), tmp / enc_file, ["image"],
                      ["features"], {"image": {0: "batch", 2: "height", 3: "width"},
                                     "features": {0: "batch", 2: "fh", 3: "fw"}}, DEFAULT_OPSET)
        torch_export(decoder, (f,), tmp / dec_file, ["features"], ["image"],
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
    _ort()
    decoders = {lv: d.cpu().eval() for lv, d in by_level(decoder).items()}
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
        logging.getLogger("painterly").warning(
            "painterly: warning: %s: a cached ONNX file did not load (%s); exporting it again",
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
