"""Atomic writes: every output (image, video, checkpoint, export folder, web result) is built
under a temporary name in its own folder, then renamed over the target with ``os.replace``, so a
reader never sees half a file and a crash or kill leaves the old file (or nothing) in place.

The temporary name is unique (random, created exclusively), so two writers never collide; it is
removed on any exception (Ctrl-C and SIGTERM included, even one landing right after the file is
created). Permissions are what ``open()`` / ``mkdir`` give (0666 / 0777 minus the umask; the
temporary file or folder is created 0600 / 0700), or an overwritten file's own.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_write", "atomic_folder", "umask"]


def umask() -> int:
    """The process umask, read without changing it where possible."""
    try:  # Linux: read it without changing it (os.umask is process-wide, racy with threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode(path: Path) -> int:
    """An overwritten file's own permissions, else 0666 minus the umask (as ``open()`` gives)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    return 0o666 & ~umask()


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _temp_name(path: Path, suffix: str) -> Path:
    """``.NAME.XXXXXXXX<suffix>`` beside ``path`` (8 random hex digits, as ``mkstemp``'s 8 letters).

    The writers choose the name and then create it exclusively (``O_EXCL``) *inside* their
    ``try``: with ``tempfile.mkstemp`` a Ctrl-C or SIGTERM landing between the file's creation and
    the assignment of its name left the file behind (seen once in a batch killed by SIGTERM).
    """
    return _folder_of(path) / f".{path.name}.{secrets.token_hex(4)}{suffix}"


def _made(tmp: Path, make: Callable[[Path], object]) -> bool:
    """``make(tmp)``, an exclusive create; ``False`` when the name is taken (another writer's: it is
    not touched, the caller takes another name)."""
    try:
        make(tmp)
    except FileExistsError:
        return False
    return True


def _new_file(tmp: Path) -> None:
    os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, suffix: str = ".tmp", fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, fsync it (optional)
    and ``os.replace`` it onto ``path``; on any exception remove it.

    The caller writes the temporary path by name (PIL, safetensors, PyAV...). Raises ``OSError``
    when the folder takes no new file.

    Example:
        >>> with atomic_write("out.png") as tmp:          # doctest: +SKIP
        ...     tmp.write_bytes(data)
    """
    path = Path(path)
    mode = _file_mode(path)
    tmp = _temp_name(path, suffix)
    try:  # the name is known before the file exists: an interrupt right after the open still cleans up
        while not _made(tmp, _new_file):
            tmp = _temp_name(path, suffix)
        os.chmod(tmp, mode)
        yield tmp
        # again: a writer that replaces the file instead of writing into it (safetensors does)
        # leaves a new file with its own mode (0600)
        os.chmod(tmp, mode)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yield a new empty temporary folder beside ``path`` (mode 0777 minus the umask); when the
    block ends normally, rename it to ``path``; on any exception remove it.

    An existing ``path`` is only replaced with ``replace=True`` (moved aside, the new folder
    renamed in, the old one removed; put back if the rename fails). Without it, an existing
    non-empty ``path`` makes the final rename raise ``OSError`` (e.g. another process finished
    the same folder first). The caller decides *whether* a folder may be replaced.
    """
    path = Path(path)
    tmp = _temp_name(path, ".tmp")
    try:  # as atomic_write: the name is known before the folder exists
        while not _made(tmp, lambda p: os.mkdir(p, 0o700)):
            tmp = _temp_name(path, ".tmp")
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
        _swap_in(tmp, path, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, path: Path, replace: bool) -> None:
    old = None
    if replace and path.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=_folder_of(path)))
        os.replace(path, old)  # a folder may be renamed onto an empty one
    try:
        os.replace(tmp, path)
    except OSError:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
