"""Device selection and the CPU speed switches (bf16 autocast, channels_last).

Where bf16 runs: CUDA, and CPUs with native bf16 (AVX512-BF16 or AMX) — unless the environment
variable ``PAINTERLY_BF16`` says otherwise:

- ``auto`` (or unset): detect it from the CPU's flags;
- ``on`` (``1``): use bf16 on any CPU (emulated on AVX2: 10-50x slower, but the same numbers a
  bf16 CPU gives, which is what the tests use to check the bf16 path on every machine);
- ``off`` (``0``): never on the CPU (plain float32, bit-for-bit the same on every CPU).
"""
from __future__ import annotations

import contextlib
import functools
import os

import torch

BF16_ENV = "PAINTERLY_BF16"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into the best available device (cuda, then mps, then cpu).

    Args:
        device: ``"auto"``, or anything ``torch.device`` accepts.

    Raises:
        ValueError: if an explicit device is not available on this machine.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available here")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} asked for but MPS is not available here")
    return dev


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_bf16_enabled() -> bool:
    """Whether CPU autocast uses bf16: :data:`BF16_ENV` if set, else :func:`cpu_has_fast_bf16`.

    Raises:
        ValueError: for a value of :data:`BF16_ENV` other than auto, on, off, 1, 0.
    """
    value = os.environ.get(BF16_ENV, "auto").strip().lower()
    if value in ("on", "1"):
        return True
    if value in ("off", "0"):
        return False
    if value not in ("auto", ""):
        raise ValueError(f"{BF16_ENV} must be auto, on or off, got {value!r}")
    return cpu_has_fast_bf16()


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype worth using on ``device``, or ``None`` (plain fp32).

    bf16 on CUDA GPUs that support it (no loss scaling needed), else fp16 on CUDA (callers that
    train must then use a ``GradScaler``); bf16 on CPUs with native bf16 (AVX512-BF16/AMX: 3-4x
    faster); nothing on other CPUs, where bf16 is emulated and 10-50x slower. On the CPU,
    :data:`BF16_ENV` overrides the detection (:func:`cpu_bf16_enabled`).
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16_enabled():
        return torch.bfloat16
    return None


def autocast(device: torch.device, enabled: bool = True):
    """Autocast to :func:`amp_dtype` where it pays off, otherwise a no-op context."""
    dtype = amp_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
