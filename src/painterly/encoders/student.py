"""The slim student encoder of the fast mode: VGG19 to relu4_1 at a fraction of its width.

The full VGG19 is most of the fast mode's cost (~324 GMAC for four levels at 512^2). A student
with every width divided by 4 (16-32-64-128 channels, the "16x" students of Collaborative
Distillation, Wang et al., CVPR 2020) costs 1/16 of that. It is distilled from the teacher
(``training/distill.py``)::

    s_l = S(x)[l]                  student features, l in relu1_1 .. relu4_1, (N, C_l / 4, h, w)
    t_l = T(x)[l]                  teacher (frozen VGG19) features, (N, C_l, h, w)
    L   = sum_l |P_l(s_l) - t_l|^2 / mean(t_l^2)      P_l: a learned 1x1 projection

Only the student ships (the projections are a training device): the fast mode's decoders are
trained on the student's own features and AdaIN/WCT run in its feature space.

Start: :func:`pruned_student` keeps the teacher's filters with the largest L1 norms (each conv's
inputs follow the previous conv's choice), as Collaborative Distillation initialises its students.

File format: safetensors with the student's state dict under ``encoder.`` (``encoder.layers.conv1_1.weight``
...) and ``{"student": {"width_divisor": 4, "last_layer": "relu4_1", ...}}`` in the metadata. A fast
model bundle that carries these tensors runs on its student instead of the full VGG19.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from .. import checkpoint as ckpt
from ..errors import StyleTransferError
from .vgg import LAYER_NAMES, VGG19Encoder

PREFIX = "encoder."
STUDENT_LAST = "relu4_1"

__all__ = ["PREFIX", "STUDENT_LAST", "fold_activation_scales", "has_student", "pruned_student",
           "read_student", "save_student", "student_from_tensors", "student_meta", "student_tensors"]


def pruned_student(teacher: VGG19Encoder, width_divisor: int = 4, last_layer: str = STUDENT_LAST) -> VGG19Encoder:
    """A student whose convs keep the teacher's top filters by L1 norm (Wang et al., 2020, sec. 3.2).

    Each kept filter keeps only the input channels the previous conv kept, scaled by
    ``C_in(teacher) / C_in(kept)`` so its output keeps roughly the teacher's magnitude.

    Examples:
        >>> t = VGG19Encoder(width_divisor=8)
        >>> s = pruned_student(t, width_divisor=2)
        >>> s(torch.rand(1, 3, 32, 32), ["relu4_1"])["relu4_1"].shape
        torch.Size([1, 32, 4, 4])
    """
    student = VGG19Encoder(pooling=teacher.pooling, normalization=teacher.normalization,
                           width_divisor=teacher.width_divisor * width_divisor, last_layer=last_layer)
    keep = torch.arange(3)
    with torch.no_grad():
        for name in student.conv_names:
            t_conv = teacher.layers[LAYER_NAMES.index(name)]
            s_conv = student.layers[LAYER_NAMES.index(name)]
            k = s_conv.weight.shape[0]
            chosen = t_conv.weight.abs().sum((1, 2, 3)).topk(k).indices.sort().values
            w = t_conv.weight[chosen][:, keep] * (t_conv.weight.shape[1] / len(keep))
            s_conv.weight.copy_(w)
            s_conv.bias.copy_(t_conv.bias[chosen])
            keep = chosen
    return student


@torch.no_grad()
def fold_activation_scales(encoder: VGG19Encoder, images: torch.Tensor) -> dict[str, float]:
    """Rescale each conv so its ReLU output has mean ~1 on ``images``, exactly (in place).

    ReLU and max/avg pooling commute with a positive scale, so dividing conv k's weights and bias
    by ``m_k`` and multiplying conv k+1's weights by ``m_k`` leaves every later layer unchanged up
    to the factor of the last conv before it. The pruned student's scales compound (its relu4_1
    averages ~7e4), which overflows fp16 (the ONNX ``--fp16`` export, the browser); after this
    every level is O(1). Returns ``{relu layer: factor its features were divided by}``.
    """
    factors: dict[str, float] = {}
    prev = 1.0
    for name in encoder.conv_names:
        conv = encoder.layers[LAYER_NAMES.index(name)]
        conv.weight.mul_(prev)  # undo the previous conv's division for this conv's input
        relu = name.replace("conv", "relu")
        m = float(encoder(images, [relu])[relu].mean().clamp_min(1e-12))
        conv.weight.div_(m)
        conv.bias.div_(m)
        factors[relu] = m
        prev = m
    return factors


def student_tensors(encoder: VGG19Encoder) -> dict[str, torch.Tensor]:
    """The student's weights as ``encoder.layers.convX_Y.*`` tensors (what model files hold)."""
    return {PREFIX + k: v.detach().contiguous() for k, v in encoder.state_dict().items()}


def student_meta(encoder: VGG19Encoder) -> dict:
    return {"width_divisor": encoder.width_divisor, "last_layer": encoder.last_layer,
            "pooling": encoder.pooling, "normalization": encoder.normalization}


def has_student(tensors: Mapping[str, torch.Tensor]) -> bool:
    """Whether a model file's tensors carry a student encoder."""
    return any(k.startswith(PREFIX) for k in tensors)


def student_from_tensors(tensors: Mapping[str, torch.Tensor], meta: Mapping, source: str = "the model") -> VGG19Encoder:
    """Build the student a file describes (``meta``: :func:`student_meta`'s keys; the width is read
    from the tensors when absent, so the first distillation probe's files load too)."""
    state = {k[len(PREFIX):]: v.float() for k, v in tensors.items() if k.startswith(PREFIX)}
    first = state.get("layers.conv1_1.weight")
    if first is None:
        raise StyleTransferError(f"{source}: no student encoder weights in it")
    divisor = int(meta.get("width_divisor") or 64 // first.shape[0])
    last = str(meta.get("last_layer") or STUDENT_LAST)
    try:
        enc = VGG19Encoder(pooling=meta.get("pooling", "max"), normalization=meta.get("normalization", "caffe"),
                           width_divisor=divisor, last_layer=last)
        wanted = enc.state_dict().keys()
        enc.load_state_dict({k: v for k, v in state.items() if k in wanted})  # deeper layers: unused
    except (RuntimeError, ValueError) as exc:
        raise StyleTransferError(f"{source}: student encoder weights do not fit ({str(exc).splitlines()[0]})") from None
    return enc.requires_grad_(False).eval()


def read_student(path: str | Path) -> VGG19Encoder:
    """A student encoder from its own file (:func:`save_student`, or the first distillation
    probe's, whose metadata is plain text) or from a fast model bundle that carries one."""
    path = Path(path)
    try:
        tensors, meta = ckpt.load(path)
    except StyleTransferError:
        tensors, meta = _load_plain(path)
    settings = meta.get("student") or meta.get("encoder") or {}
    if not settings and "width_divisor" in meta:  # the probe's metadata
        settings = {"width_divisor": int(meta["width_divisor"])}
    return student_from_tensors(tensors, settings, str(path))


def _load_plain(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - a broken file is the user's to hear about
        raise StyleTransferError(f"{path}: not a valid safetensors file ({exc.__class__.__name__})") from None


def save_student(encoder: VGG19Encoder, path: str | Path, **meta) -> Path:
    """Write a student atomically (``meta``: more metadata, e.g. its step)."""
    return ckpt.atomic_save(student_tensors(encoder), path, {"student": student_meta(encoder), **meta})
