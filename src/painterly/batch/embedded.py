"""The embedded runner: the whole batch in this process, no cluster. One :class:`FastStylizer`
(the model loaded once) shared by a pool of ``workers`` threads, each running
:func:`~painterly.batch.worker.run_task` on one image at a time with ``cores // workers``
torch threads, so reading and writing files overlaps the network passes of other images.
Memory is bounded: at most ``2 * workers`` images are submitted at once (``workers`` running,
as many waiting), whatever the batch's length.

Stopping (an exception from the ``sink``, Ctrl-C, SIGTERM): nothing new starts, images not yet
started are dropped, the running ones finish (their writes are atomic) and are recorded.
"""
from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable

import torch

from .options import BatchOptions, available_cores
from .tasks import Task
from .worker import StyleCache, TaskResult, run_task

__all__ = ["run_embedded", "threads_per_worker"]


def threads_per_worker(options: BatchOptions) -> tuple[int, int]:
    """(workers, torch threads each) for this machine."""
    cores = available_cores()
    workers = options.workers or cores
    return workers, max(1, cores // workers)


def run_embedded(tasks: Iterable[Task], options: BatchOptions, stylizer, sink: Callable[[TaskResult], None],
                 keep: Callable[[TaskResult], None]) -> None:
    """Run ``tasks`` with ``stylizer`` in a bounded thread pool.

    Args:
        tasks: the images to do (complete ones already left out).
        options: the batch's options (``workers``...).
        stylizer: a ``FastStylizer`` (or anything with its call), shared by the threads.
        sink: called in this thread with each result as it finishes (may raise to stop).
        keep: called instead of ``sink`` for the images that finish while stopping (records
            only; must not raise).
    """
    workers, threads = threads_per_worker(options)
    styles = StyleCache(options.max_input_pixels)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # process-wide: restored below
    try:
        if workers == 1:
            for task in tasks:
                sink(run_task(stylizer, task, options, styles))
            return
        _run_pool(tasks, options, stylizer, styles, workers, sink, keep)
    finally:
        torch.set_num_threads(previous)


def _run_pool(tasks, options, stylizer, styles, workers, sink, keep) -> None:
    pending: set[Future] = set()  # submitted and not yet given to sink

    def drain(block_until: int) -> None:
        while len(pending) > block_until:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                pending.discard(fut)  # sink records before it may raise: this one is kept
                sink(fut.result())

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="painterly-batch")
    try:
        for task in tasks:
            pending.add(pool.submit(run_task, stylizer, task, options, styles))
            drain(2 * workers - 1)
        drain(0)
    except BaseException:
        for fut in pending:
            fut.cancel()  # not started yet: dropped
        pool.shutdown(wait=True)  # the running ones finish their (atomic) writes
        for fut in pending:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                keep(fut.result())
        raise
    finally:
        pool.shutdown(wait=True)
