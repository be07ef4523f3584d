"""painterly.batch / ``painterly batch``: a small tree done embedded with a real tiny model
file (nothing patched): mirrored outputs, bad inputs reported, seeded pairing, resume after a
kill, the manifest, the CLI's exit codes and one-line errors."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import painterly as st
from batch_tree import BAD, GOOD, STYLES, make_tree, pixels, temp_files
from painterly.batch import BatchOptions, read_manifest, write_manifest
from painterly.batch.manifest import COLUMNS, ManifestJournal
from painterly.batch.tasks import Inputs, collect_inputs, list_styles, plan_tasks
from painterly.cli import main
from painterly.errors import StyleTransferError
from painterly.stylizers.fast import FastStylizer

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def stylizer(tiny_model_file):
    return FastStylizer.from_model(str(tiny_model_file), "cpu")


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path)


def _run(src, styles, out, stylizer, **kw):
    return st.batch(src, out, styles, stylizer=stylizer, size=32, **kw)


def test_folder_is_mirrored_and_bad_inputs_are_reported(tree, tmp_path, stylizer):
    src, styles = tree
    out = tmp_path / "out"
    seen = []
    report = _run(src, styles, out, stylizer, workers=2, progress=seen.append)
    assert (report.total, report.done, report.skipped, report.ignored) == (len(GOOD) + len(BAD), len(GOOD), 0, 2)
    assert not report.ok
    assert sorted(f["content"] for f in report.failed) == sorted(str(src / b) for b in BAD)
    assert all("\n" not in f["error"] and f["content"] in f["error"] for f in report.failed)
    for rel in GOOD:  # same relative path and type; longest side 32
        with Image.open(out / rel) as img:
            assert max(img.size) == 32 and img.format == _format(rel)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted([*GOOD, "manifest.csv", "report.json"])
    rows = read_manifest(out / "manifest.csv", require="output")
    assert [r["output"] for r in rows] == sorted(GOOD)
    assert set(rows[0]) == set(COLUMNS)
    assert {r["style"] for r in rows} <= {str(styles / s) for s in STYLES}
    assert all(float(r["seconds"]) > 0 and r["model"] == str(stylizer.model_path) for r in rows)
    saved = json.loads((out / "report.json").read_text())
    assert saved["done"] == len(GOOD) and len(saved["failed"]) == len(BAD)
    assert [p.processed for p in seen] == list(range(1, len(GOOD) + len(BAD) + 1))
    assert seen[-1].eta_s == 0 and seen[-1].images_per_s > 0


def _format(rel: str) -> str:
    return {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[rel.rsplit(".", 1)[1]]


def test_outputs_keep_each_photos_type_or_take_the_chosen_one(tree, tmp_path, stylizer):
    src, styles = tree
    _run(src, styles, tmp_path / "same", stylizer)
    for rel in GOOD:
        with Image.open(tmp_path / "same" / rel) as img:
            assert img.format == _format(rel)
    _run(src, styles, tmp_path / "jpg", stylizer, format="jpg", quality=80)
    assert sorted(p.relative_to(tmp_path / "jpg").as_posix() for p in (tmp_path / "jpg").rglob("*.jpg")) == \
        sorted(r.rsplit(".", 1)[0] + ".jpg" for r in GOOD)


def test_two_photos_writing_one_output_is_an_error_before_any_work(tree, tmp_path, stylizer):
    src, styles = tree
    Image.new("RGB", (8, 8)).save(src / "x.png")  # x.jpg and x.png -> x.png
    with pytest.raises(StyleTransferError, match=r"x\.jpg and x\.png would both write x\.png"):
        _run(src, styles, tmp_path / "out", stylizer, format="png")
    assert not (tmp_path / "out").exists()


def _inputs(n: int) -> Inputs:
    return Inputs([(Path(f"/data/{i // 10}/img{i}.jpg"), f"{i // 10}/img{i}.jpg", {}) for i in range(n)])


def test_random_pairing_is_seeded_per_photo():
    styles = [Path(f"/paintings/p{i}.jpg") for i in range(7)]
    opts = BatchOptions(seed=3, alpha=0.25, alpha_max=0.75)
    a = plan_tasks(_inputs(60), styles, "/out", opts)
    assert a == plan_tasks(_inputs(60), styles, "/out", opts)  # a rerun: the same pairs
    rows = _inputs(80).rows
    b = plan_tasks(Inputs(list(reversed(rows))), styles, "/out", opts)  # more photos, another order
    assert {t.key: (t.style, t.alpha) for t in a}.items() <= {t.key: (t.style, t.alpha) for t in b}.items()
    assert len({t.style for t in a}) == 7  # every painting used
    assert all(0.25 <= t.alpha <= 0.75 and round(t.alpha, 4) == t.alpha for t in a)
    other = plan_tasks(_inputs(60), styles, "/out", BatchOptions(seed=4))
    assert [t.style for t in other] != [t.style for t in a]
    assert {t.alpha for t in other} == {1.0}
    one = plan_tasks(_inputs(5), styles[:1], "/out", opts)
    assert {t.style for t in one} == {"/paintings/p0.jpg"}


def test_a_killed_batch_resumes_without_duplicates_or_half_files(tree, tmp_path, stylizer):
    src, styles = tree
    out = tmp_path / "out"

    class Killed(Exception):
        pass

    def kill_after_two(state):
        if state.processed == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(src, styles, out, stylizer, workers=2, progress=kill_after_two)
    assert temp_files(out) == []
    first = {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix != ".csv"
             and p.is_file() and p.name != "report.json"}
    assert 0 < len(first) < len(GOOD)
    rows = read_manifest(out / "manifest.csv", require="output")
    assert sorted(r["output"] for r in rows) == sorted(first)  # the record matches what was written

    report = _run(src, styles, out, stylizer, workers=2)
    assert report.skipped == len(first) and report.done == len(GOOD) - len(first)
    rows = read_manifest(out / "manifest.csv", require="output")
    assert [r["output"] for r in rows] == sorted(GOOD)  # one row per output
    for rel, mtime in first.items():  # not redone
        assert (out / rel).stat().st_mtime_ns == mtime
    assert temp_files(out) == []
    again = _run(src, styles, out, stylizer)
    assert (again.done, again.skipped, len(again.failed)) == (0, len(GOOD), len(BAD))
    forced = _run(src, styles, out, stylizer, force=True)
    assert (forced.done, forced.skipped) == (len(GOOD), 0)
    assert len(read_manifest(out / "manifest.csv", require="output")) == len(GOOD)


def test_stale_temporary_files_of_a_killed_run_are_removed(tree, tmp_path, stylizer):
    src, styles = tree
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / ".y.png.k3j_x9Qa.tmp").write_bytes(b"half")  # an atomic write cut by SIGKILL
    (out / "a" / ".keep.tmp").write_bytes(b"not ours")
    _run(src, styles, out, stylizer)
    assert sorted(p.name for p in temp_files(out)) == [".keep.tmp"]


def test_manifest_round_trips_and_reruns_the_same_pairs(tree, tmp_path, stylizer):
    src, styles = tree
    out = tmp_path / "out"
    _run(src, styles, out, stylizer, seed=5, alpha=0.3, alpha_max=0.9)
    rows = read_manifest(out / "manifest.csv", require="output")
    write_manifest(tmp_path / "copy.csv", list(reversed(rows)))
    assert read_manifest(tmp_path / "copy.csv", require="output") == rows
    assert 0.3 <= float(rows[0]["alpha"]) <= 0.9

    again = st.batch(out / "manifest.csv", tmp_path / "again", stylizer=stylizer, size=32)
    assert again.done == len(GOOD) and again.ok
    for row in read_manifest(tmp_path / "again" / "manifest.csv", require="output"):
        first = next(r for r in rows if r["output"] == row["output"])
        assert (row["content"], row["style"], row["alpha"]) == (first["content"], first["style"], first["alpha"])
        assert np.array_equal(pixels(out / row["output"]), pixels(tmp_path / "again" / row["output"]))


def test_a_half_written_last_line_is_ignored(tmp_path):
    path = tmp_path / "manifest.csv"
    with ManifestJournal(path, {}) as journal:
        journal.add({"output": "a.png", "content": "/in/a.png", "style": "/s.png", "alpha": 1.0})
    with open(path, "a") as f:
        f.write("b.png,/in/b.pn")  # killed in the middle of an append
    assert [r["output"] for r in read_manifest(path, require="output")] == ["a.png"]


def test_input_manifest_csv_and_parquet(tree, tmp_path, stylizer):
    src, styles = tree
    table = [{"content": "in/x.jpg", "style": "styles/s2.png", "output": "one/first.png", "alpha": "0.5"},
             {"content": "in/a/y.png", "style": "", "output": "", "alpha": ""}]
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    report = st.batch(tmp_path / "pairs.csv", tmp_path / "out", styles / "s1.png", stylizer=stylizer, size=32)
    assert report.done == 2
    rows = {r["output"]: r for r in read_manifest(tmp_path / "out" / "manifest.csv", require="output")}
    assert set(rows) == {"one/first.png", "a/y.png"}  # no output column: the path under the common folder
    assert (rows["one/first.png"]["style"], rows["one/first.png"]["alpha"]) == (str(styles / "s2.png"), "0.5")
    assert (rows["a/y.png"]["style"], rows["a/y.png"]["alpha"]) == (str(styles / "s1.png"), "1.0")

    pa = pytest.importorskip("pyarrow", reason="Parquet manifests need pyarrow (the ray extra)")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(table), tmp_path / "pairs.parquet")
    again = st.batch(tmp_path / "pairs.parquet", tmp_path / "pq", styles / "s1.png", stylizer=stylizer, size=32)
    assert again.done == 2
    assert np.array_equal(pixels(tmp_path / "out/one/first.png"), pixels(tmp_path / "pq/one/first.png"))


def test_bad_batches_are_refused_with_one_line(tree, tmp_path, stylizer):
    src, styles = tree
    with pytest.raises(StyleTransferError, match="no style for this photo"):
        _run(src, [], tmp_path / "o1", stylizer)
    with pytest.raises(StyleTransferError, match="no such file or folder"):
        _run(src, [tmp_path / "missing.png"], tmp_path / "o2", stylizer)
    with pytest.raises(StyleTransferError, match="another folder than the photos"):
        _run(src, styles, src, stylizer)
    (tmp_path / "bad.csv").write_text("photo,style\na.jpg,b.jpg\n")
    with pytest.raises(StyleTransferError, match="no 'content' column"):
        _run(tmp_path / "bad.csv", styles, tmp_path / "o3", stylizer)
    assert collect_inputs(src, tmp_path / "o4").ignored == 2
    assert len(list_styles([styles, styles / "s1.png"])) == len(STYLES)


def test_dry_run_counts_and_estimates_and_writes_nothing(tree, tmp_path, stylizer, capsys):
    src, styles = tree
    _run(src, styles, tmp_path / "out", stylizer, workers=1)
    (tmp_path / "out" / "x.jpg").unlink()
    before = sorted((tmp_path / "out").rglob("*"))
    report = st.batch(src, tmp_path / "out", styles, dry_run=True)
    assert (report.total, report.skipped, report.runner) == (len(GOOD) + len(BAD), len(GOOD) - 1, "dry-run")
    assert report.estimate_s > 0
    assert sorted((tmp_path / "out").rglob("*")) == before


# ----- the command line ------------------------------------------------------------------------

def _cli(*args):
    return main(["batch", *map(str, args)])


def test_cli_exit_codes_and_one_line_per_bad_input(tree, tmp_path, tiny_model_file, capsys):
    src, styles = tree
    out = tmp_path / "out"
    assert _cli(src, "--styles", styles, "-o", out, "--model", tiny_model_file, "--size", 32, "-q") == 1
    captured = capsys.readouterr()
    skipped = sorted(line for line in captured.err.splitlines() if line.startswith("painterly: skipped "))
    assert len(skipped) == 2
    assert skipped[0].startswith(f"painterly: skipped {src / 'a/b/trunc.jpg'}: ")
    assert "truncat" in skipped[0].lower()  # "corrupt or truncated image (...)" or "cannot open (Truncated File Read)"
    assert skipped[1] == f"painterly: skipped {src / 'a/fake.png'}: not an image (or a format Pillow cannot read)"
    assert "Traceback" not in captured.err
    assert f"{len(GOOD)} written, 0 already done, 2 failed" in captured.out
    for bad in BAD:
        os.remove(src / bad)
    assert _cli(src, "--styles", styles, "-o", out, "--model", tiny_model_file, "--size", 32, "-q") == 0
    assert f"0 written, {len(GOOD)} already done, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("args, code, message", [
    (["--styles", "S", "--actors", "2"], 2, "--actors only applies with --ray"),
    (["--styles", "S", "--ray", "--workers", "2"], 2, "--workers only applies without --ray"),
    (["--styles", "S", "--alpha", "0.9", "--alpha-max", "0.2"], 2, "--alpha-max (0.2) must be >= alpha"),
    (["--styles", "S", "--alpha", "2"], 2, "argument --alpha: must be <= 1"),
    (["--styles", "S", "--format", "gif"], 2, "argument --format: invalid choice"),
    (["--styles", "nowhere.png"], 1, "--styles nowhere.png: no such file or folder"),
    (["--styles", "S", "--model", "nope.safetensors"], 1, "nope.safetensors"),
])
def test_cli_errors_are_one_line(tree, tmp_path, capsys, args, code, message):
    src, styles = tree
    args = [str(styles) if a == "S" else a for a in args]
    assert _cli(src, "-o", tmp_path / "out", *args) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and err.startswith("painterly: error: ")
    assert not (tmp_path / "out").exists()


def test_cli_dry_run(tree, tmp_path, capsys):
    src, styles = tree
    assert _cli(src, "--styles", styles, "-o", tmp_path / "out", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"{len(GOOD) + len(BAD)} photos: {len(GOOD) + len(BAD)} to do, 0 already done, 2 other files ignored" in out
    assert "estimate: about" in out
    assert not (tmp_path / "out").exists()


def test_sigterm_stops_cleanly_and_the_rerun_finishes(tmp_path, tiny_model_file):
    """A real kill: SIGTERM to the command in the middle of a batch (exit 143, the manifest lists
    exactly the complete outputs, no temporary file), then the same command finishes the rest."""
    src, N = tmp_path / "in", 12  # noqa: N806
    rng = np.random.default_rng(0)
    for i in range(N):
        (src / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).save(src / f"d{i % 3}/p{i:03d}.png")
    style = tmp_path / "s.png"
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(style)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "painterly", "batch", str(src), "--styles", str(style), "-o", str(out),
           "--model", str(tiny_model_file), "--size", "32", "-q", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = out / "manifest.csv"
    while proc.poll() is None and not (manifest.is_file() and manifest.read_text().count("\n") >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert temp_files(out) == []
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert 1 <= len(written) < N
    assert sorted(r["output"] for r in read_manifest(manifest, require="output")) == written

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{N - len(written)} written, {len(written)} already done, 0 failed of {N}" in done.stdout
    assert len(read_manifest(manifest, require="output")) == N
