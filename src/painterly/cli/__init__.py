"""Command line: ``painterly`` (demo), ``painterly stylize``, ``painterly train``,
``video``, ``export``, ``distill``, ``tune`` (and ``painterly serve`` when the web part is installed):
one module per command (``cli/stylize.py`` ...), each with ``add_parser(sub)`` and its ``cmd_*``.

Every user error ends as one line ``painterly: error: ...`` on stderr and a non-zero exit
code (2 for bad command-line usage, 1 for bad input files or values, 130 for Ctrl-C, 143 for
SIGTERM, which cleans up as Ctrl-C does); never a traceback (set ``PAINTERLY_DEBUG=1`` to see
one for an unexpected error).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from ..errors import CLIError
from .common import PROG, error_line

__all__ = ["CLIError", "PROG", "build_parser", "main"]

# the command modules, in the order of `painterly --help`; each has add_parser(sub)
COMMANDS = ("stylize", "demo", "train", "export", "video", "distill", "tune", "batch", "serve")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and raise instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see: {self.prog} --help)")


DESCRIPTION = """\
Neural style transfer: repaint a photo in the style of one or more paintings.

Run without arguments to stylize a built-in photo with a built-in style (a quick demo).

commands:
  stylize CONTENT STYLE [STYLE ...] -o OUT   stylize an image (see: painterly stylize --help)
  demo                                       the built-in demo (what no arguments does)
  train --content DIR --style DIR --out DIR  train a feed-forward (AdaIN) decoder
  batch INPUT --styles STYLE... -o OUT_DIR   stylize a collection, resumable (--ray: on a cluster)
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``painterly`` parser with every command of :data:`COMMANDS` (imported here, lazily)."""
    from .. import __version__

    parser = _Parser(prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def _error(message: str, code: int) -> int:
    error_line(message)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code (``sys.exit(main())``)."""
    from ..errors import StyleTransferError
    from ..signals import Terminated, sigterm_as_interrupt

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            argv = ["demo", *argv]  # `painterly -q`, `painterly --size 256`: the demo's options
        args = parser.parse_args(argv)
        with sigterm_as_interrupt():  # `kill`/`timeout` clean up like Ctrl-C (no .part left)
            code = args.func(args)
        return int(code or 0)
    except CLIError as exc:
        return _error(str(exc), 2)
    except StyleTransferError as exc:
        return _error(str(exc), 1)
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return 143  # 128 + SIGTERM, as the shell reports a process killed by it
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _error("out of memory: try a smaller --size or --max-pixels", 1)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except (OSError, ValueError, RuntimeError) as exc:
        if os.environ.get("PAINTERLY_DEBUG"):
            raise
        return _error(f"{exc.__class__.__name__}: {exc}", 1)
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("PAINTERLY_DEBUG"):
            raise
        return _error(f"unexpected {exc.__class__.__name__}: {exc}", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
