"""Stylize a whole collection: ``painterly batch`` and :func:`batch`.

A folder of photos (walked recursively) or a manifest, each photo paired with a painting (one
for all, one per row, or a seeded random one: the Stylized-ImageNet recipe), the input tree
mirrored under the output folder, a manifest of what was written, resumable (complete outputs
are skipped; writes are atomic), bad inputs reported and skipped. Runs embedded (one model, a
thread pool sized to the cores) or on Ray Data (``ray=...``: an actor pool, one model per
actor), with the same per-image code, so both give the same outputs.

Modules: ``options`` (:class:`BatchOptions`), ``tasks`` (inputs, pairing, output paths),
``manifest`` (CSV/Parquet in, the output manifest), ``worker`` (one image), ``embedded`` and
``ray_runner`` (the runners), ``report`` (progress and report), ``run`` (:func:`batch`).
"""
from __future__ import annotations

from .manifest import read_manifest, write_manifest
from .options import BatchOptions
from .report import BatchProgress, BatchReport
from .run import MANIFEST_NAME, REPORT_NAME, batch
from .tasks import Task
from .worker import TaskResult

__all__ = ["BatchOptions", "BatchProgress", "BatchReport", "MANIFEST_NAME", "REPORT_NAME", "Task", "TaskResult",
           "batch", "read_manifest", "write_manifest"]
