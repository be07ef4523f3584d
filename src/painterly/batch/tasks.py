"""What a batch has to do: the photos (a folder walked recursively, or a manifest), the style of
each (one for all, one per manifest row, or a seeded random one per photo) and where each output
goes (the input tree mirrored under the output folder).

The random pairing is the Stylized-ImageNet recipe (Geirhos et al., ICLR 2019: every training
image repainted by AdaIN with a randomly chosen painting). Each photo's draw is seeded by
``(seed, the photo's path relative to the input)`` alone, so a rerun, a resumed run, another
order, another machine or a cluster gives the same pairs, and adding photos changes no pair.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from ..errors import StyleTransferError
from ..image import IMAGE_SUFFIXES, SAVE_FORMATS
from .manifest import MANIFEST_SUFFIXES, read_manifest
from .options import OUTPUT_FORMATS, BatchOptions

__all__ = ["Inputs", "Task", "collect_inputs", "list_styles", "plan_tasks", "walk_images"]


@dataclass(frozen=True)
class Task:
    """One photo to stylize.

    Attributes:
        content: the photo's path.
        style: the painting's path.
        output: where the result goes (absolute).
        key: the output's path relative to the output folder (POSIX), the manifest's key.
        alpha: this image's content/style trade-off.
    """

    content: str
    style: str
    output: str
    key: str
    alpha: float


@dataclass
class Inputs:
    """Photos found: ``rows`` of (photo path, path relative to the input, manifest row), and the
    number of files ``ignored`` (not images by name; hidden files)."""

    rows: list[tuple[Path, str, dict]]
    ignored: int = 0


def walk_images(folder: Path, exclude: Path | None = None) -> tuple[list[Path], int]:
    """Image files (by extension) under ``folder``, recursively, sorted by relative path; hidden
    files and folders and the ``exclude`` folder (an output folder inside the input) left out.
    Returns (images, how many other files were ignored)."""
    found, ignored = [], 0
    skip = exclude.resolve() if exclude is not None else None
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(root, d).resolve() != skip))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root, name))
            else:
                ignored += 1
    found.sort(key=lambda p: p.relative_to(folder).as_posix())
    return found, ignored


def collect_inputs(source: str | Path, out_dir: str | Path) -> Inputs:
    """The photos of a batch: ``source`` is a folder (walked recursively) or a manifest (CSV, or
    Parquet with pyarrow) whose ``content`` paths are relative to the manifest's folder.

    Raises:
        StyleTransferError: missing source, unreadable manifest, no photos.
    """
    source = Path(source)
    if source.is_dir():
        if Path(out_dir).resolve() == source.resolve():
            raise StyleTransferError(f"-o {out_dir}: write into another folder than the photos' own")
        images, ignored = walk_images(source, exclude=Path(out_dir))
        if not images:
            raise StyleTransferError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in it or its subfolders")
        return Inputs([(p, p.relative_to(source).as_posix(), {}) for p in images], ignored)
    if not source.exists():
        raise StyleTransferError(f"{source}: no such file or folder")
    if source.suffix.lower() not in MANIFEST_SUFFIXES:
        raise StyleTransferError(f"{source}: INPUT must be a folder of photos or a manifest "
                                 f"({', '.join(MANIFEST_SUFFIXES)})")
    records = read_manifest(source)
    if not records:
        raise StyleTransferError(f"{source}: the manifest has no rows")
    base = source.resolve().parent
    paths = [base / r["content"] for r in records]
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return Inputs([(p, p.relative_to(root).as_posix(), r) for p, r in zip(paths, records)])


def list_styles(styles: Sequence[str | Path]) -> list[Path]:
    """The paintings: files as given, folders walked recursively (sorted), duplicates dropped.

    Raises:
        StyleTransferError: a path that does not exist, or a folder without images.
    """
    out: list[Path] = []
    for s in styles:
        p = Path(s)
        if p.is_dir():
            images, _ = walk_images(p)
            if not images:
                raise StyleTransferError(f"--styles {s}: no images in this folder")
            out.extend(images)
        elif p.is_file():
            out.append(p)
        else:
            raise StyleTransferError(f"--styles {s}: no such file or folder")
    seen: set[str] = set()
    return [p for p in out if not (str(p.resolve()) in seen or seen.add(str(p.resolve())))]


def _draw(seed: int, what: str, key: str) -> random.Random:
    # str seeds go through SHA-512: the same on every machine and Python run (no hash randomisation)
    return random.Random(f"{seed}/{what}/{key}")


def _output_key(rel: str, row: dict, options: BatchOptions) -> str:
    if row.get("output"):
        key = PurePosixPath(str(row["output"]).replace(os.sep, "/"))
        if key.is_absolute() or ".." in key.parts:
            raise StyleTransferError(f"manifest output {row['output']!r}: must be a path inside the output folder")
        if key.suffix.lower() not in SAVE_FORMATS:
            raise StyleTransferError(f"manifest output {row['output']!r}: unsupported type "
                                     f"(use {', '.join(sorted(SAVE_FORMATS))})")
        return key.as_posix()
    path = PurePosixPath(rel)
    if options.format is not None:
        return path.with_suffix(OUTPUT_FORMATS[options.format]).as_posix()
    return path.as_posix() if path.suffix.lower() in SAVE_FORMATS else path.with_suffix(".png").as_posix()


def _alpha(rel: str, row: dict, options: BatchOptions) -> float:
    if row.get("alpha") not in (None, ""):
        try:
            value = float(row["alpha"])
        except (TypeError, ValueError):
            raise StyleTransferError(f"manifest row of {rel}: alpha {row['alpha']!r} is not a number") from None
        if not 0.0 <= value <= 1.0:
            raise StyleTransferError(f"manifest row of {rel}: alpha must be between 0 and 1, got {value}")
        return value
    if options.alpha_max is None:
        return options.alpha
    return round(_draw(options.seed, "alpha", rel).uniform(options.alpha, options.alpha_max), 4)


def plan_tasks(inputs: Inputs, styles: Sequence[Path], out_dir: str | Path, options: BatchOptions,
               manifest_dir: Path | None = None) -> list[Task]:
    """One :class:`Task` per photo, in input order.

    Style: the manifest row's ``style`` (relative to ``manifest_dir``), else the only style, else
    a seeded random choice among ``styles``. Output: the row's ``output``, else the photo's
    relative path (with ``options.format``'s extension) under ``out_dir``.

    Raises:
        StyleTransferError: a photo without a style, or two photos writing the same output.
    """
    out_dir = Path(out_dir).resolve()
    tasks, owner = [], {}
    for path, rel, row in inputs.rows:
        if row.get("style"):
            style = Path(str(row["style"]))
            style = style if style.is_absolute() or manifest_dir is None else manifest_dir / style
        elif len(styles) == 1:
            style = styles[0]
        elif styles:
            style = styles[_draw(options.seed, "style", rel).randrange(len(styles))]
        else:
            raise StyleTransferError(f"{rel}: no style for this photo (give --styles, or a style column)")
        key = _output_key(rel, row, options)
        if key in owner:
            raise StyleTransferError(f"{owner[key]} and {rel} would both write {key}"
                                     + ("" if row.get("output") else "; keep each photo's type (no --format)"))
        owner[key] = rel
        tasks.append(Task(os.path.abspath(path), os.path.abspath(style), str(out_dir / key), key,
                          _alpha(rel, row, options)))
    return tasks
