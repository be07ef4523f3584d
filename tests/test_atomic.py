"""atomic_write / atomic_folder: unique temporary names, usual permissions, nothing left on failure."""
from __future__ import annotations

import os

import pytest

from painterly.atomic import atomic_folder, atomic_write


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_new_file_gets_0644_and_no_temp_is_left(tmp_path, umask022):
    with atomic_write(tmp_path / "a.bin") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.bin.")
        tmp.write_bytes(b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert _mode(tmp_path / "a.bin") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_umask_is_followed(tmp_path):
    old = os.umask(0o077)
    try:
        with atomic_write(tmp_path / "a.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.bin") == 0o600


def test_overwritten_file_keeps_its_mode(tmp_path, umask022):
    (tmp_path / "a.bin").write_bytes(b"old")
    (tmp_path / "a.bin").chmod(0o640)
    with atomic_write(tmp_path / "a.bin", fsync=False) as tmp:
        tmp.write_bytes(b"new")
    assert _mode(tmp_path / "a.bin") == 0o640 and (tmp_path / "a.bin").read_bytes() == b"new"


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path, exc):
    (tmp_path / "a.bin").write_bytes(b"old")
    with pytest.raises(exc):
        with atomic_write(tmp_path / "a.bin") as tmp:
            tmp.write_bytes(b"half")
            raise exc()
    assert (tmp_path / "a.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_two_writers_never_share_a_temporary_name(tmp_path):
    with atomic_write(tmp_path / "a.bin") as t1, atomic_write(tmp_path / "a.bin") as t2:
        assert t1 != t2
        t1.write_bytes(b"1")
        t2.write_bytes(b"2")
    assert (tmp_path / "a.bin").read_bytes() == b"1"  # the outer block ends last
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_an_interrupt_right_after_the_temporary_is_created_leaves_nothing(tmp_path, monkeypatch, kind):
    """Ctrl-C or SIGTERM (a KeyboardInterrupt here) landing the moment the temporary exists, before
    the writer holds its name (the window ``tempfile.mkstemp`` had: a batch killed by SIGTERM
    once left a ``.tmp`` behind)."""
    real = os.open if kind == "file" else os.mkdir

    def create_then_interrupt(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "open" if kind == "file" else "mkdir", create_then_interrupt)
    writer = atomic_write if kind == "file" else atomic_folder
    with pytest.raises(KeyboardInterrupt):
        with writer(tmp_path / "a.bin"):
            pass
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_taken_temporary_name_is_never_touched(tmp_path, monkeypatch):
    """Another writer's temporary with the same random name: a new name, theirs stays as it was."""
    import secrets

    names = iter(["deadbeef", "deadbeef", "cafef00d"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(names))
    theirs = tmp_path / ".a.bin.deadbeef.tmp"
    with atomic_write(tmp_path / "a.bin") as first:
        assert first == theirs
        first.write_bytes(b"theirs")
        with atomic_write(tmp_path / "a.bin") as mine:
            assert mine.name == ".a.bin.cafef00d.tmp"
            assert theirs.read_bytes() == b"theirs"
            mine.write_bytes(b"mine")
        assert theirs.read_bytes() == b"theirs"
    assert (tmp_path / "a.bin").read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_unwritable_folder_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        with atomic_write(tmp_path / "missing" / "a.bin"):
            pass


def test_folder_gets_0755(tmp_path, umask022):
    with atomic_folder(tmp_path / "out") as tmp:
        (tmp / "f").write_text("x")
    assert _mode(tmp_path / "out") == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_folder_failure_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(tmp_path / "out") as tmp:
            (tmp / "f").write_text("x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_folder_replaces_only_when_asked(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("old")
    with pytest.raises(OSError):
        with atomic_folder(tmp_path / "out") as tmp:
            (tmp / "new").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old"]
    with atomic_folder(tmp_path / "out", replace=True) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new"]


def test_checkpoint_and_model_files_get_the_usual_mode(tmp_path):
    """safetensors replaces the temporary file it is given (its own 0600 file): the mode is set
    again before the rename."""
    import torch

    from painterly import checkpoint as ckpt

    old = os.umask(0o022)
    try:
        path = ckpt.atomic_save({"x": torch.zeros(2)}, tmp_path / "model.safetensors", {"step": 1})
    finally:
        os.umask(old)
    assert _mode(path) == 0o644
