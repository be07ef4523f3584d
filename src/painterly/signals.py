"""SIGTERM handled like Ctrl-C: ``kill``, ``timeout``, systemd and container runtimes stop a
process with SIGTERM, whose default action ends Python without running ``finally`` blocks, so a
half-written ``.NAME.mp4.XXXX.part`` (or an export's temporary folder) stayed behind. Raising an
exception instead lets the same clean-up as for Ctrl-C run (atomic writes remove their
temporary files, training saves nothing half-done).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

__all__ = ["Terminated", "sigterm_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (a ``KeyboardInterrupt``, so every ``except
    KeyboardInterrupt`` clean-up runs for it too)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` in the main thread; the previous
    handler comes back after. Outside the main thread (where Python cannot set handlers) it
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
