"""The Ray runner: the same batch on Ray Data (imported only for ``--ray``; ``pip install
"painterly[ray]"``). The tasks (paths and alphas, no pixels) become a dataset; ``map_batches``
hands them to a pool of actors, each holding one :class:`FastStylizer` (the model loaded once per
actor), which read and write the files by path with the embedded runner's own
:func:`~painterly.batch.worker.run_task`: same pairs, same code, same pixels. Only the
results (a few strings and numbers per image) come back to the driver, which keeps the manifest.

On a cluster every node needs ``painterly`` installed, and the photos, paintings, model
file and output folder at the same paths (a shared file system).
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Callable, Sequence

import numpy as np

from ..errors import StyleTransferError
from .options import BatchOptions
from .tasks import Task
from .worker import StyleCache, TaskResult, run_task

__all__ = ["StylizeActor", "ray_available", "run_ray"]


def ray_available() -> bool:
    """True when Ray Data can be imported."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


class StylizeActor:
    """A Ray Data actor: one model, loaded once; called with batches of task rows.

    Args:
        options: the :class:`BatchOptions` as a dict (plain values cross process boundaries).
        threads: torch threads of this actor (its CPUs).
    """

    def __init__(self, options: dict, threads: int) -> None:
        import torch

        from ..stylizers.fast import FastStylizer

        torch.set_num_threads(threads)
        self.options = BatchOptions(**options)
        self.stylizer = FastStylizer.from_model(self.options.model, self.options.device)
        self.styles = StyleCache(self.options.max_input_pixels)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for i in range(len(batch["content"])):
            task = Task(str(batch["content"][i]), str(batch["style"][i]), str(batch["output"][i]),
                        str(batch["key"][i]), float(batch["alpha"][i]))
            rows.append(run_task(self.stylizer, task, self.options, self.styles).to_row())
        return {k: np.asarray([r[k] for r in rows]) for k in rows[0]}


def _init(address: str | None, cpus: int | None) -> bool:
    """Connect to (or start) Ray; True when this call started it (and must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    try:
        if address in (None, "", "local"):
            ray.init(num_cpus=cpus, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise StyleTransferError(f"--ray {address or ''}: cannot start or join Ray ({exc})".replace("  ", " ")) from None
    return True


def run_ray(tasks: Sequence[Task], options: BatchOptions, sink: Callable[[TaskResult], None],
            address: str | None = None, cpus: int | None = None) -> None:
    """Run ``tasks`` on Ray Data.

    Args:
        tasks: the images to do (complete ones already left out).
        options: the batch's options (``batch_size``, ``actors``, ``cpus_per_actor``...).
        sink: called on the driver with each result as it comes back (may raise to stop).
        address: ``None``/``"local"`` starts a local Ray (or uses the one already initialised in
            this process); ``"auto"`` joins the cluster this machine belongs to; ``HOST:PORT`` or
            ``ray://HOST:PORT`` joins that one.
        cpus: CPUs of a local Ray (default: all).
    """
    if not ray_available():
        raise StyleTransferError('--ray needs Ray Data: pip install "painterly[ray]"')
    if not tasks:
        return
    import pyarrow as pa
    import ray

    started = _init(address, cpus)
    try:
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its INFO lines would break our bar
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the caller shows one bar for the whole batch
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = options.actors or max(1, cluster_cpus // options.cpus_per_actor)
        actors = min(actors, max(1, -(-len(tasks) // options.batch_size)))  # no idle actor loads a model
        table = pa.table({k: [getattr(t, k) for t in tasks] for k in ("content", "style", "output", "key", "alpha")})
        # blocks cut here, on the driver: a repartition would need a CPU the actors hold (deadlock)
        step = max(options.batch_size, -(-len(tasks) // (8 * actors)))
        blocks = [table.slice(i, step) for i in range(0, len(tasks), step)]
        env = {k: v for k, v in os.environ.items() if k.startswith("PAINTERLY_")}
        extra = {"runtime_env": {"env_vars": env}} if env else {}
        ds = ray.data.from_arrow(blocks).map_batches(
            StylizeActor, batch_size=options.batch_size, batch_format="numpy",
            fn_constructor_kwargs={"options": asdict(options), "threads": options.cpus_per_actor},
            compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=options.cpus_per_actor, **extra)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for i in range(len(batch["content"])):
                sink(TaskResult.from_row({k: v[i] for k, v in batch.items()}))
    finally:
        if started:
            ray.shutdown()
