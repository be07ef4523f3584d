"""Checkpoints: one safetensors file per save (no pickle anywhere we load), written atomically.

A checkpoint holds the tensors of the decoder (``decoder.*``), the discriminator (``disc.*``),
each optimiser's state (``opt.<name>.<param index>.<key>``) and RNG states (``rng.*``); the
step, config and optimiser hyper-parameters go in the safetensors metadata as JSON. One file
means a kill can never leave a model from one step beside an optimiser from another.

A *model* file (what ships and what ``--model`` loads) is just ``decoder.*`` tensors plus the
decoder and encoder config in the metadata, optionally in fp16.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .atomic import atomic_write
from .errors import StyleTransferError


def atomic_save(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, Any]) -> Path:
    """``safetensors`` save to a temp file in the same folder, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_write(path) as tmp:
        save_file(tensors, tmp, metadata={k: json.dumps(v) for k, v in metadata.items()})
    return path


def load(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file: (tensors, metadata with JSON values decoded)."""
    path = Path(path)
    if not path.is_file():
        raise StyleTransferError(f"{path}: no such checkpoint or model file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - a broken file is the user's problem to hear about
        raise StyleTransferError(f"{path}: not a valid safetensors file ({exc.__class__.__name__})") from None
    return tensors, meta


def optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten an optimiser's state dict into tensors + JSON-able hyper-parameters."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"opt.{name}.{idx}.{key}"] = t
    return tensors, {"param_groups": sd["param_groups"]}


def restore_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    prefix = f"opt.{name}."
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, sub = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[sub] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def network_tensors(name: str, net: torch.nn.Module, opt: torch.optim.Optimizer
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A network's weights (``<name>.*``) and its optimiser's state (``opt.<name>.*``), and the
    metadata entry ``{"opt.<name>": hyper-parameters}``: what a checkpoint keeps of, e.g., the
    discriminator."""
    tensors = {f"{name}.{k}": v.detach().contiguous() for k, v in net.state_dict().items()}
    opt_t, opt_meta = optimizer_tensors(name, opt)
    return {**tensors, **opt_t}, {f"opt.{name}": opt_meta}


def restore_network(name: str, net: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                    meta: dict[str, Any], missing: str) -> None:
    """Inverse of :func:`network_tensors`; ``missing``: the error's message when the checkpoint has
    no such network (e.g. a run resumed with the GAN on that was trained without it)."""
    if f"opt.{name}" not in meta:
        raise StyleTransferError(missing)
    prefix = f"{name}."
    net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    restore_optimizer(name, opt, tensors, meta[f"opt.{name}"])
