"""``painterly.batch()``: plan a batch, leave out what is complete, run the rest embedded or
on Ray, keep the manifest and write the report.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable, Sequence

from ..errors import StyleTransferError
from .manifest import ManifestJournal, load_previous
from .options import BatchOptions, available_cores
from .report import BatchProgress, BatchReport, Meter
from .tasks import Task, collect_inputs, list_styles, plan_tasks
from .worker import DONE, FAILED, TaskResult, is_complete

__all__ = ["MANIFEST_NAME", "REPORT_NAME", "batch", "estimate_seconds"]

MANIFEST_NAME = "manifest.csv"
REPORT_NAME = "report.json"
_TEMP = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")  # atomic_write's temporary names


def _model_label(options: BatchOptions, stylizer=None) -> str:
    """The model column: the model asked for, else the given stylizer's file, else the default's name."""
    from ..stylizers.fast_model import default_model_name

    if options.model:
        return options.model
    if stylizer is not None:
        return str(getattr(stylizer, "model_path", None) or "(a given stylizer)")
    return default_model_name() or ""


def _row(task: Task, options: BatchOptions, model: str, result: TaskResult | None = None) -> dict:
    row = {"output": task.key, "content": task.content, "style": task.style, "alpha": task.alpha,
           "seed": options.seed, "model": model, "seconds": None, "width": None, "height": None}
    if result is not None:
        row.update(seconds=round(result.seconds or 0.0, 3), width=result.width, height=result.height)
    return row


def _same_pair(old: dict, task: Task) -> bool:
    try:
        return old.get("content") == task.content and old.get("style") == task.style \
            and float(old.get("alpha")) == task.alpha
    except (TypeError, ValueError):
        return False


def remove_stale_temps(tasks: Sequence[Task]) -> int:
    """Remove the temporary files a killed run left beside the outputs of ``tasks`` (atomic
    writes interrupted by SIGKILL or a Ray shutdown); returns how many."""
    wanted: dict[Path, set[str]] = {}
    for t in tasks:
        p = Path(t.output)
        wanted.setdefault(p.parent, set()).add(p.name)
    removed = 0
    for folder, names in wanted.items():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            m = _TEMP.match(entry.name)
            if m and m.group("name") in names and entry.is_file():
                entry.unlink(missing_ok=True)
                removed += 1
    return removed


def estimate_seconds(tasks: Sequence[Task], options: BatchOptions, sample: int = 16) -> float:
    """Seconds the work would take on this machine: the fast plan's figures (measured on 2 AVX2
    cores with the large model) at the sizes of up to ``sample`` photos, read from headers."""
    from PIL import Image

    from .. import plan as planning
    from ..image import fit_size

    if not tasks:
        return 0.0
    step = max(1, len(tasks) // sample)
    per_image = []
    for t in list(tasks)[::step][:sample]:
        try:
            with Image.open(t.content) as img:
                w, h = img.size
        except (OSError, ValueError):
            continue
        if options.size is not None:
            h, w = fit_size(h, w, size=options.size)
        plan = planning.plan_fast(h, w, options.fast_options(1.0), threads=available_cores(), loaded=True)
        per_image.append(plan.seconds)
    mean = sum(per_image) / len(per_image) if per_image else 0.0
    return planning.FAST_LOAD_SECONDS + mean * len(tasks)


def _prepare_output(out_dir: Path) -> None:
    from ..image import check_writable_folder

    if out_dir.exists() and not out_dir.is_dir():
        raise StyleTransferError(f"-o {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StyleTransferError(f"-o {out_dir}: cannot create the folder ({exc.strerror or exc})") from None
    check_writable_folder(out_dir, what=f"-o {out_dir}")


def batch(input: str | Path, output: str | Path, styles: str | Path | Sequence[str | Path] = (),
          options: BatchOptions | None = None, *, ray: str | bool | None = None, dry_run: bool = False,
          progress: Callable[[BatchProgress], None] | None = None, stylizer=None,
          ray_cpus: int | None = None, **fields) -> BatchReport:
    """Stylize a collection: every photo of ``input`` with its painting, into ``output``.

    Resumable: an output that exists complete is skipped (``force`` redoes it); outputs are
    written atomically, so a killed run leaves no half file. A bad photo is reported and skipped;
    the batch goes on. ``OUT/manifest.csv`` records every output (content, style, alpha, seed,
    model, seconds); ``OUT/report.json`` holds the returned report.

    Args:
        input: a folder of photos (walked recursively; the output mirrors its tree), or a
            manifest (CSV, or Parquet with pyarrow) with ``content`` and optional ``style``,
            ``output``, ``alpha`` columns (paths relative to the manifest's folder).
        output: the output folder (created).
        styles: painting files and/or folders of paintings. One painting: used for every photo;
            several: each photo gets a random one, seeded (``options.seed``) so a rerun gives the
            same pairs. A manifest's ``style`` column wins.
        options: a :class:`BatchOptions`; or give its fields as keywords (``alpha=0.5``...).
        ray: ``None``/``False`` runs here (one model, a thread pool sized to the cores); ``True``
            or ``"local"`` starts a local Ray (or uses the one already initialised); ``"auto"``
            or an address joins a cluster.
        dry_run: count the work and estimate the time; write nothing.
        progress: ``progress(BatchProgress)`` after each image (images/s, time left); may raise
            to stop the batch (what is finished stays finished and recorded).
        stylizer: a ``FastStylizer`` to use instead of loading ``options.model`` (embedded only).
        ray_cpus: CPUs of a local Ray (default: all).

    Returns:
        The :class:`BatchReport` (``report.ok`` is False when an input failed).

    Raises:
        StyleTransferError: nothing to do at all (no photos, no style, bad options, an output
            folder that cannot be written); one-line messages.

    Examples:
        >>> import painterly as st
        >>> report = st.batch("photos/", "out/", styles="paintings/", seed=0, alpha=0.8)  # doctest: +SKIP
        >>> report.summary()                                                              # doctest: +SKIP
        '120 written, 0 already done, 1 failed of 121 into out/ in 95.2 s (1.31 images/s, embedded)'
    """
    if options is None:
        try:
            options = BatchOptions(**fields)
        except TypeError as exc:
            raise StyleTransferError(f"batch(): {exc}") from None
    elif fields:
        raise StyleTransferError(f"batch(): give options= or option keywords ({', '.join(fields)}), not both")
    options.validate()
    t0 = time.perf_counter()
    out_dir = Path(output)
    inputs = collect_inputs(input, out_dir)
    style_paths = list_styles([styles] if isinstance(styles, (str, Path)) else list(styles))
    manifest_dir = None if Path(input).is_dir() else Path(input).resolve().parent
    tasks = plan_tasks(inputs, style_paths, out_dir, options, manifest_dir)
    if options.model:
        from ..stylizers.fast_model import check_model_arg

        check_model_arg(options.model)
    complete = set() if options.force else {t.key for t in tasks if is_complete(t.output)}
    todo = [t for t in tasks if t.key not in complete]
    runner = "ray" if ray not in (None, False) else "embedded"
    report = BatchReport(total=len(tasks), skipped=len(complete), ignored=inputs.ignored, output=str(out_dir),
                         manifest=str(out_dir / MANIFEST_NAME), runner="dry-run" if dry_run else runner)
    if dry_run:
        report.estimate_s = estimate_seconds(todo, options)
        report.seconds = time.perf_counter() - t0
        return report

    _prepare_output(out_dir)
    remove_stale_temps(todo)
    model = _model_label(options, stylizer)
    previous = load_previous(out_dir / MANIFEST_NAME)
    kept = {}
    for t in tasks:
        if t.key in complete:
            old = previous.get(t.key)
            kept[t.key] = old if old is not None and _same_pair(old, t) else _row(t, options, model)
    meter = Meter(len(todo))

    def keep(result: TaskResult) -> None:  # record only; never raises
        if result.status == DONE:
            journal.add(_row(result.task, options, model, result))
            report.done += 1
        elif result.status == FAILED:
            report.failed.append({"content": result.task.content, "error": result.error})

    def sink(result: TaskResult) -> None:
        keep(result)
        state = meter.add(result)
        if progress is not None:
            progress(state)

    try:
        with ManifestJournal(out_dir / MANIFEST_NAME, kept) as journal:
            if runner == "ray":
                from .ray_runner import run_ray

                meter.start()  # Ray's start-up (actors loading models) counts: it is part of the cost
                run_ray(todo, options, sink, address=None if ray is True else str(ray), cpus=ray_cpus)
            elif todo:
                from .embedded import run_embedded

                if stylizer is None:
                    from ..stylizers.fast import FastStylizer

                    stylizer = FastStylizer.from_model(options.model, options.device)
                meter.start()
                run_embedded(todo, options, stylizer, sink, keep)
    finally:
        report.seconds = time.perf_counter() - t0
        report.images_per_s = meter.rate
        report.write(out_dir / REPORT_NAME)
    return report
