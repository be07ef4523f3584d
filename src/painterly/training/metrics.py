"""The metrics CSV of a training run (one row per logged step)."""
from __future__ import annotations

import csv
from pathlib import Path


def append_metrics(path: Path, step: int, values: dict[str, float]) -> None:
    """Append a row to a metrics CSV; a column that appears later (a warm-up ends, a resume turns
    the GAN on) widens the header and leaves the older rows' cells empty, so columns never shift."""
    header: list[str] = ["step"]
    rows: list[dict[str, str]] = []
    if path.exists():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or ["step"])
            new_keys = [k for k in sorted(values) if k not in header]
            if new_keys:
                rows = list(reader)
    else:
        new_keys = sorted(values)
    row = {"step": str(step), **{k: f"{v:.6g}" for k, v in values.items()}}
    if new_keys or not path.exists():
        header += new_keys
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header)
            w.writeheader()
            w.writerows(rows + [row])
    else:
        with open(path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=header).writerow(row)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop the rows logged after ``step`` (a resumed run redoes them)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(kept)
