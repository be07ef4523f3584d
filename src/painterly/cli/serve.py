"""``painterly serve``: the web page and HTTP API (registered when the web part is installed)."""
from __future__ import annotations

import argparse
import importlib.util
import os
from typing import Any

from ..errors import CLIError


def add_parser(sub: Any) -> None:
    """Register ``serve`` when the web part can be imported (its flags are the web part's)."""
    try:
        from .. import web
    except ImportError:
        return
    web.add_serve_parser(sub).set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """The checks that need no server first, with this CLI's messages; then serve."""
    from .. import web

    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("multipart", "python-multipart")):
        if importlib.util.find_spec(module) is None and not (
                module == "multipart" and importlib.util.find_spec("python_multipart") is not None):
            raise CLIError(f"serve needs the web extra ({package} is not installed): "
                           "pip install 'painterly[web]'")
    fast_model = getattr(args, "fast_model", None)
    if fast_model and not os.path.isfile(fast_model):
        raise CLIError(f"--fast-model {fast_model}: no such file")
    try:
        web.settings_from_args(args).validate()
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return web.serve_command(args)
