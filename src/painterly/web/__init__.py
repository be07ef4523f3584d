"""Web page and HTTP API: ``painterly serve`` (FastAPI + uvicorn).

``create_app`` builds the ASGI app; ``add_serve_parser`` adds the ``serve`` sub-command to the
CLI; ``python -m painterly.web`` runs the same command on its own. FastAPI and uvicorn are
only imported when a server is actually built (they are the ``web`` extra).
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
from typing import Any, Sequence

from ..argtypes import int_at_least, non_negative_int, number, positive_float, positive_int
from .config import API_KEY_ENV, Settings, default_workers

__all__ = ["create_app", "Settings", "add_serve_parser", "serve_command", "main"]


def create_app(*args: Any, **kwargs: Any):
    """Build the FastAPI app (see :func:`painterly.web.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


def _port(text: str) -> int:
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def _folder(text: str) -> str:
    """A folder that exists or can be made (not a file)."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return text


def _resolution(text: str) -> tuple[int, int]:
    """``WxH`` (either order) -> (long side, short side), both at least 64."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        sides = []
    if len(sides) != 2 or min(sides) < 64:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT with both sides >= 64 (e.g. 1920x1080), got {text!r}")
    return max(sides), min(sides)


# The smallest values Settings.validate accepts, checked while parsing so the message names the flag.
_MIN_SIZE = 64
_MIN_PIXELS = 64 * 64
_MIN_UPLOAD_MB = 1 / 1024  # 1 KB


def configure_serve_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ..stylizers.fast import BACKENDS

    d = Settings()
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 = any free port)")
    p.add_argument("--workers", type=positive_int, default=default_workers(),
                   help=f"images stylized at the same time (threads; default {default_workers()} = cores / 2)")
    p.add_argument("--queue-limit", type=non_negative_int, default=d.max_queue,
                   help=f"jobs allowed to wait beyond the running ones; more get 429 (default {d.max_queue})")
    p.add_argument("--api-key", default=None,
                   help=f"require this key (X-API-Key or Bearer) for the API; default: ${API_KEY_ENV} if set")
    p.add_argument("--cors-origin", action="append", default=None, metavar="ORIGIN",
                   help="allow browser calls from this origin (repeatable; '*' for any)")
    p.add_argument("--max-upload-mb", type=number(_MIN_UPLOAD_MB), default=d.max_upload_bytes / 1024 / 1024,
                   help=f"largest request in MB (default {d.max_upload_bytes // 1024 // 1024})")
    p.add_argument("--max-pixels", type=int_at_least(_MIN_PIXELS), default=d.max_pixels,
                   help=f"largest input image in pixels, width x height (default {d.max_pixels:,})")
    p.add_argument("--max-size", type=int_at_least(_MIN_SIZE), default=d.max_size,
                   help=f"largest result side a client may ask for with method=optimize (default {d.max_size})")
    p.add_argument("--max-fast-size", type=int_at_least(_MIN_SIZE), default=d.max_fast_size,
                   help=f"largest result side a client may ask for with method=fast (default {d.max_fast_size})")
    p.add_argument("--default-size", type=int_at_least(_MIN_SIZE), default=d.default_size,
                   help=f"result side when the client does not ask (default {d.default_size})")
    p.add_argument("--max-video-seconds", type=positive_float, default=d.max_video_seconds,
                   help=f"longest video clip a job takes, in seconds (default {d.max_video_seconds:g}); longer gets 413")
    p.add_argument("--max-video-mb", type=number(_MIN_UPLOAD_MB), default=d.max_video_bytes / 1024 / 1024,
                   help=f"largest video file in MB (default {d.max_video_bytes // 1024 // 1024}); larger gets 413")
    p.add_argument("--max-video-resolution", type=_resolution,
                   default=(d.max_video_side, d.max_video_short_side), metavar="WxH",
                   help=f"largest video frame, either orientation (default {d.max_video_side}x"
                        f"{d.max_video_short_side}); larger gets 413")
    p.add_argument("--sync-timeout", type=positive_float, default=d.sync_timeout,
                   help=f"seconds POST /api/v1/stylize waits for its image (default {d.sync_timeout:.0f}); "
                        "requests unlikely to finish in time get 429")
    p.add_argument("--result-ttl", type=positive_float, default=d.result_ttl,
                   help=f"seconds a result is kept before it is deleted (default {d.result_ttl:.0f})")
    p.add_argument("--result-dir", type=_folder, default=None,
                   help="folder for results (default: a new temporary folder, removed on exit)")
    p.add_argument("--fast-model", default=None, metavar="FILE",
                   help="decoder model.safetensors for the fast mode (default: the built-in model)")
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="run the fast mode's networks in torch (default) or onnxruntime (CPU; exported "
                        "to ONNX once and cached; see docs/onnx.md for which is quicker)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="server log level (default info)")
    p.set_defaults(func=serve_command)
    return p


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to an ``argparse`` sub-parser set; the command is in ``args.func(args)``."""
    p = subparsers.add_parser(
        "serve", help="start the web page and HTTP API",
        description="Start the web page and the HTTP API (FastAPI + uvicorn). Open the printed URL in a "
                    "browser; the API is documented at /docs.")
    return configure_serve_parser(p)


def settings_from_args(args: argparse.Namespace) -> Settings:
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    return Settings(
        workers=args.workers,
        max_queue=args.queue_limit,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_size=args.max_size,
        max_fast_size=args.max_fast_size,
        default_size=min(args.default_size, args.max_size),
        result_ttl=args.result_ttl,
        result_dir=args.result_dir,
        api_key=api_key,
        cors_origins=list(args.cors_origin or []),
        sync_timeout=args.sync_timeout,
        max_video_seconds=args.max_video_seconds,
        max_video_bytes=int(args.max_video_mb * 1024 * 1024),
        max_video_side=args.max_video_resolution[0],
        max_video_short_side=args.max_video_resolution[1],
    )


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def engine_from_args(args: argparse.Namespace):
    """The real stylizers for ``serve``'s flags (``--fast-model``, ``--backend``); ValueError says
    what is wrong with them."""
    from ..stylizers.fast import FastOptions
    from .engine import LibraryEngine

    fast_model = getattr(args, "fast_model", None)
    if fast_model and not os.path.isfile(fast_model):
        raise ValueError(f"--fast-model {fast_model}: no such file")
    backend = getattr(args, "backend", "torch")
    if backend == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ValueError("--backend onnxruntime needs the 'onnxruntime' package "
                             "(pip install 'painterly[onnx]')") from None
    return LibraryEngine(fast_model=fast_model, fast_options=FastOptions(backend=backend))


def serve_command(args: argparse.Namespace, engine: Any = None) -> int:
    """Run the server until Ctrl-C; returns an exit code (2 for bad settings)."""
    try:
        import uvicorn  # noqa: F401
        import fastapi  # noqa: F401
        import importlib.util
        if importlib.util.find_spec("python_multipart") is None and importlib.util.find_spec("multipart") is None:
            raise ImportError(name="python-multipart")
    except ImportError as exc:
        print(f"painterly serve: the web extra is not installed ({exc.name}); "
              "install it with: pip install 'painterly[web]'", file=sys.stderr)
        return 2
    import uvicorn
    import torch

    settings = settings_from_args(args)
    try:
        settings.validate()
    except ValueError as exc:
        print(f"painterly serve: {exc}", file=sys.stderr)
        return 2
    # Each worker gets an equal share of the cores; torch releases the GIL inside ops.
    threads = settings.torch_threads or max(1, (os.cpu_count() or 1) // settings.workers)
    torch.set_num_threads(threads)

    # Bind first so a busy port is a one-line error, not a traceback.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        print(f"painterly serve: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    if engine is None:
        try:
            engine = engine_from_args(args)
        except ValueError as exc:
            print(f"painterly serve: {exc}", file=sys.stderr)
            sock.close()
            return 2
    app = create_app(settings, engine)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}"
    modes = app.state.server.modes()
    print(f"painterly: serving on {url}  (API docs: {url}/docs)", flush=True)
    from .engine import video_unavailable

    video_note = video_unavailable(app.state.engine)
    print(f"painterly: workers {settings.workers} x {threads} torch threads, queue limit {settings.max_queue}, "
          f"modes: fast={'yes' if modes.get('fast') else 'no'} optimize={'yes' if modes.get('optimize') else 'no'} "
          f"video={'yes' if video_note is None else 'no'}, "
          f"results kept {settings.result_ttl:.0f} s in {app.state.manager.dir}", flush=True)
    if not _is_loopback(args.host) and not settings.api_key:
        print(f"painterly: warning: listening on {args.host} without an API key "
              f"(set --api-key or ${API_KEY_ENV})", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=5,
                            limit_concurrency=1000, server_header=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m painterly.web",
        description="Start the painterly web page and HTTP API (same as `painterly serve`).")
    configure_serve_parser(parser)
    args = parser.parse_args(argv)
    return args.func(args)
