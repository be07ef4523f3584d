"""Manifests: the table a batch can read its work from, and the one it writes of what it did.

Input: CSV (or Parquet, with pyarrow) with a ``content`` column and optional ``style``,
``output`` and ``alpha`` columns; other columns are ignored, so the output manifest of one batch
is a valid input of another (the same pairs again).

Output, ``OUT/manifest.csv``: one row per output written, :data:`COLUMNS`, keyed by ``output``
(relative to ``OUT``). While a batch runs, rows are appended one whole line at a time as images
finish, so a killed run keeps the record of what it did (a half last line, from a kill in the
middle of a write, is ignored when read); at the start and the end of every run the file is
rewritten atomically, sorted, one row per output.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, TextIO

from ..atomic import atomic_write
from ..errors import StyleTransferError

__all__ = ["COLUMNS", "MANIFEST_SUFFIXES", "ManifestJournal", "load_previous", "read_manifest", "write_manifest"]

COLUMNS = ("output", "content", "style", "alpha", "seed", "model", "seconds", "width", "height")
MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")


def _read_csv(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8-sig")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a half-written last line (killed mid-append)
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        return []
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    return [{k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k is not None}
            for row in reader]


def _read_parquet(path: Path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise StyleTransferError(f"{path}: reading a Parquet manifest needs pyarrow (pip install pyarrow), "
                                 "or give a CSV") from None
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise StyleTransferError(f"{path}: not a readable Parquet file ({exc})") from None


def read_manifest(path: str | Path, require: str = "content") -> list[dict]:
    """The rows of a manifest (CSV, or Parquet with pyarrow) as dicts of column -> value.

    Args:
        path: the manifest file.
        require: a column every row needs (``"content"`` for an input manifest).

    Raises:
        StyleTransferError: unreadable file, missing column, or a row without a value there.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
        >>> _ = p.write_text("content,style\\na.jpg,s.jpg\\nb.jpg,\\n")
        >>> read_manifest(p)
        [{'content': 'a.jpg', 'style': 's.jpg'}, {'content': 'b.jpg', 'style': ''}]
    """
    path = Path(path)
    try:
        rows = _read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else _read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StyleTransferError(f"{path}: cannot read the manifest ({exc})") from None
    if rows and require not in rows[0]:
        raise StyleTransferError(f"{path}: the manifest has no {require!r} column "
                                 f"(it has: {', '.join(map(str, rows[0]))})")
    for i, row in enumerate(rows, start=2):
        if require and not row.get(require):
            raise StyleTransferError(f"{path}: row {i} has no {require}")
    return rows


def _line(row: dict) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in COLUMNS])
    return buf.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    return str(value)


def write_manifest(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write ``rows`` (one per output, sorted by ``output``) atomically as CSV with :data:`COLUMNS`."""
    path = Path(path)
    ordered = sorted({r["output"]: r for r in rows}.values(), key=lambda r: r["output"])
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(",".join(COLUMNS) + "\n")
            f.writelines(_line(r) for r in ordered)
    return path


class ManifestJournal:
    """``OUT/manifest.csv`` during a run: the rows kept from earlier runs are written first
    (atomically), then each finished image is appended as one whole line and flushed.

    Args:
        path: the manifest file.
        rows: ``{output: row}`` to start from (earlier runs' rows still valid).

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "manifest.csv"
        >>> with ManifestJournal(p, {}) as j:
        ...     j.add({"output": "a.png", "content": "/in/a.jpg", "alpha": 0.5})
        >>> read_manifest(p, require="output")[0]["alpha"]
        '0.5'
    """

    def __init__(self, path: str | Path, rows: dict[str, dict]) -> None:
        self.path = Path(path)
        self.rows = dict(rows)
        self._file: TextIO | None = None

    def __enter__(self) -> "ManifestJournal":
        write_manifest(self.path, self.rows.values())
        self._file = open(self.path, "a", encoding="utf-8", newline="")
        return self

    def add(self, row: dict) -> None:
        """Record one output (appended at once; a row for the same output replaces it at the end)."""
        self.rows[row["output"]] = row
        assert self._file is not None, "use ManifestJournal as a context manager"
        self._file.write(_line(row))
        self._file.flush()

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()
        write_manifest(self.path, self.rows.values())  # also after an error: sorted, one row each


def load_previous(path: str | Path) -> dict[str, dict]:
    """``{output: row}`` of an existing output manifest (the last row of an output wins), or ``{}``."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        return {r["output"]: r for r in read_manifest(path, require="output")}
    except StyleTransferError:
        return {}  # an unreadable record is rebuilt from the outputs themselves

