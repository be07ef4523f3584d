"""Distributed training (``torchrun``): joining the process group, this process's rank, and
decisions every rank takes together."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..device import resolve_device


def init_distributed(device: str = "auto") -> bool:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1); gloo on CPU, nccl on CUDA.
    Returns True if this call created the group (then :meth:`Trainer.close` destroys it)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        # DistributedDataParallel's constructor imports torch._dynamo. Imported after the group
        # exists, that import keeps ~10 references to the group's Python object that nothing frees
        # (torch 2.13, measured), so destroy_process_group could never join gloo's worker threads,
        # and a worker still dropping its last collective's tensors when the interpreter shuts
        # down aborts the process ("terminate called without an active exception"). Imported
        # first, it holds none.
        import torch._dynamo  # noqa: F401

        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        return True
    return False


def rank_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_ranks_agree(flag: bool, device: torch.device) -> bool:
    """True on every process if ``flag`` is true on any (a stop decided by one rank must be taken by
    all, or the others wait forever in the next collective)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
