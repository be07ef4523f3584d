"""Fast-mode model files: what they hold, how they are read and packed, which encoder they need.

A model file (safetensors) holds one decoder (``decoder.*`` tensors, what ``train`` writes), a
training checkpoint, or a **bundle** of several levels (``<level>.*`` tensors; what ships). Its
metadata records the encoder settings the decoders were trained with (input space, pooling,
width). A bundle may also carry its own **student encoder** (``encoder.*`` tensors, see
``encoders/student.py``): the slim model runs on that 1/4-width VGG19 instead of the full one,
and refuses the full VGG19 (and a full-width model refuses a student) with a clear error.

Models by name: ``"slim"`` (the default, when installed) and ``"large"`` (the four full-width
decoders on the full VGG19), or a path.
"""
from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch

from .. import checkpoint as ckpt
from ..encoders.student import has_student, student_from_tensors, student_meta, student_tensors
from ..encoders.vgg import VGG19Encoder
from ..errors import StyleTransferError
from ..models import Decoder

LAYER = "relu4_1"
TRANSFORMS = ("adain", "wct", "mixed")  # the feature transforms of the fast mode (see stylizers/fast.py)
# Built-in models by name, best first: the first one installed is the default.
BUILTIN_MODELS = {"slim": "slim_model.safetensors", "large": "fast_model.safetensors"}

__all__ = ["BUILTIN_MODELS", "TRANSFORMS", "FastModel", "builtin_model_path", "check_encoder", "check_model_arg",
           "check_transform", "default_model_available", "default_model_name", "read_model", "resolve_model_path", "save_bundle", "write_bundle"]


@dataclass
class FastModel:
    """What a model file holds.

    Attributes:
        decoders: ``{level: decoder}`` (eval mode, frozen).
        settings: the encoder settings the decoders were trained with (``normalization``,
            ``pooling``, ``width_divisor``).
        encoder: the model's own student encoder, or ``None`` (it runs on the full VGG19).
        path: the file it was read from.
        step: the training step it was saved at (one-decoder files; ``None`` otherwise).
        transform: the feature transform its decoders were tuned with (``painterly tune``), run
            when the options name none; ``None`` for reconstruction decoders (AdaIN is run).
    """

    decoders: dict[str, Decoder]
    settings: dict = field(default_factory=dict)
    encoder: VGG19Encoder | None = None
    path: Path | None = None
    step: int | None = None
    transform: str | None = None


def check_transform(transform: str, flag: str = "transform") -> None:
    """Refuse a transform that is none of :data:`TRANSFORMS`, in one line naming ``flag``.

    Examples:
        >>> check_transform("mixed")
        >>> check_transform("lst")
        Traceback (most recent call last):
        ...
        painterly.errors.StyleTransferError: transform must be one of adain, wct, mixed, got 'lst'
    """
    if transform not in TRANSFORMS:
        raise StyleTransferError(f"{flag} must be one of {', '.join(TRANSFORMS)}, got {transform!r}")


def _asset(name: str) -> Path:
    return Path(str(importlib.resources.files("painterly").joinpath("assets", name)))


def default_model_name() -> str | None:
    """The name of the best built-in model installed (``"slim"``, else ``"large"``), or ``None``."""
    return next((n for n, f in BUILTIN_MODELS.items() if _asset(f).is_file()), None)


def builtin_model_path(name: str | None = None) -> Path:
    """The file of a built-in model (``None``: the default one)."""
    name = name or default_model_name() or "large"
    return _asset(BUILTIN_MODELS[name])


def default_model_available() -> bool:
    """True when the package ships a trained model."""
    return default_model_name() is not None


def resolve_model_path(model: str | Path | None) -> Path:
    """``None`` -> the default built-in model; ``"slim"``/``"large"`` -> that built-in model; else a
    path that must exist."""
    if model is None:
        if not default_model_available():
            raise StyleTransferError("this installation has no built-in fast model; use --method optimize or --model FILE")
        return builtin_model_path()
    if str(model) in BUILTIN_MODELS:
        path = builtin_model_path(str(model))
        if not path.is_file():
            raise StyleTransferError(f"the built-in model {model!r} is not installed (have: {default_model_name()})")
        return path
    path = Path(model)
    if not path.is_file():
        raise StyleTransferError(f"{path}: no such model file")
    return path


def check_model_arg(model: str | None, flag: str = "--model") -> None:
    """The CLI's check of a model option: a built-in model's name or an existing file."""
    if model is None or str(model) in BUILTIN_MODELS:
        resolve_model_path(model)
    elif not Path(model).is_file():
        raise StyleTransferError(f"{flag} {model}: no such file (or name a built-in model: {', '.join(BUILTIN_MODELS)})")


def _decoder_from(tensors: dict[str, torch.Tensor], prefix: str, cfg: Mapping, file: Path) -> Decoder:
    dec = Decoder(int(cfg["in_channels"]), float(cfg["width"]), float(cfg["input_scale"]),
                  level=cfg.get("level", LAYER))
    state = {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
    try:
        dec.load_state_dict(state)
    except RuntimeError as exc:
        raise StyleTransferError(f"{file}: decoder weights do not match its config ({str(exc).splitlines()[0]})") from None
    return dec.eval().requires_grad_(False)


def read_model(path: str | Path | None = None) -> FastModel:
    """Read a model file (``None``, ``"slim"``, ``"large"`` or a path; see :func:`resolve_model_path`)."""
    file = resolve_model_path(path)
    tensors, meta = ckpt.load(file)
    settings = meta.get("encoder", {})
    if "decoders" in meta:  # a bundle
        decs = {lv: _decoder_from(tensors, f"{lv}.", cfg, file) for lv, cfg in meta["decoders"].items()}
    elif "decoder" in meta:
        dec = _decoder_from(tensors, "decoder.", meta["decoder"], file)
        decs = {dec.level: dec}
    elif "config" in meta and "decoder.net.1.weight" in tensors:  # a decoder trainer's checkpoint
        tc = meta["config"]
        level = tc.get("level", LAYER)
        cfg = {"in_channels": int(tensors["decoder.net.1.weight"].shape[1]), "width": tc["decoder_width"],
               "input_scale": tc["layer_scales"][level], "level": level}
        decs = {level: _decoder_from(tensors, "decoder.", cfg, file)}
        settings = {}
    else:
        raise StyleTransferError(f"{file}: not a painterly decoder (no config in its metadata)")
    encoder = student_from_tensors(tensors, settings, str(file)) if has_student(tensors) else None
    if meta.get("transform") not in (None, *TRANSFORMS):
        raise StyleTransferError(f"{file}: unknown transform {meta['transform']!r} in its metadata")
    return FastModel(decs, settings, encoder, file, meta.get("step"), meta.get("transform"))


def save_bundle(paths: Sequence[str | Path], out: str | Path, half: bool = True,
                student: VGG19Encoder | None = None) -> Path:
    """Pack model files of several levels into one bundle (what ships as a built-in model).

    Every file must have been trained against the same encoder settings; fp16 halves the size.
    ``student``: the encoder the decoders were trained on, when it is not the full VGG19; it is
    stored in the bundle in float32 (it is small, and its rounding would move every feature).
    """
    decoders: dict[str, Decoder] = {}
    encoder_meta: dict = {}
    steps = {}
    for path in paths:
        model = read_model(path)
        enc = {k: v for k, v in model.settings.items() if k != "layer"}
        clash = {k for k in enc.keys() & encoder_meta.keys() if enc[k] != encoder_meta[k]}
        if clash:
            raise StyleTransferError(f"{path}: trained with encoder {enc}, the others with {encoder_meta}")
        encoder_meta.update(enc)
        for level, dec in model.decoders.items():
            decoders[level] = dec
            steps[level] = model.step
    return write_bundle(decoders, out, encoder_meta, student=student, steps=steps, half=half)


def write_bundle(decoders: Mapping[str, Decoder], out: str | Path, settings: Mapping, *,
                 student: VGG19Encoder | None = None, steps: Mapping | None = None, half: bool = True,
                 extra: Mapping | None = None) -> Path:
    """Write ``{level: decoder}`` (and the ``student`` they run on, float32) as a bundle; ``settings``:
    the encoder settings they were trained with; ``extra``: more metadata (e.g. a tuning recipe)."""
    tensors: dict[str, torch.Tensor] = {}
    encoder_meta = dict(settings)
    for level, dec in decoders.items():
        for k, v in dec.state_dict().items():
            tensors[f"{level}.{k}"] = (v.half() if half and v.is_floating_point() else v).detach().contiguous()
    if student is not None:
        check_encoder(student, encoder_meta, "the decoders")
        encoder_meta.update(student_meta(student))
        tensors.update({k: v.float() for k, v in student_tensors(student).items()})
    meta = {"decoders": {lv: dict(d.config) for lv, d in decoders.items()}, "encoder": encoder_meta,
            "steps": dict(steps or {}), **dict(extra or {})}
    return ckpt.atomic_save(tensors, out, meta)


def check_encoder(encoder: VGG19Encoder, settings: Mapping, source: str = "the model") -> None:
    """Refuse an encoder whose input space, pooling or width differ from those a model was trained with."""
    for key in ("normalization", "pooling", "width_divisor"):
        want = settings.get(key)
        have = getattr(encoder, key, None)
        if want is not None and have is not None and want != have:
            hint = ""
            if key == "width_divisor":
                hint = (" (a slim model runs on its own student encoder, a full-width one on the full VGG19: "
                        "pass no encoder, or the model made for it)")
            raise StyleTransferError(f"{source} was trained with encoder {key}={want}, this encoder has {have}{hint}")
