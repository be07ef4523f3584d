"""``painterly batch INPUT --styles STYLE... -o OUT_DIR``: the command-line side of
:func:`painterly.batch`.

The flags are generated from :class:`~painterly.batch.BatchOptions` (one per field, help
from the field's metadata); the library never sees the Namespace. A tqdm bar shows images/s and
the time left; each bad input is one line on stderr; the exit status is 1 when any input failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import types
import typing
from typing import Any

from ..argtypes import int_at_least, number, positive_int

__all__ = ["add_batch_parser", "cmd_batch", "option_flags"]

PROG = "painterly"
RAY_ONLY = ("batch_size", "actors", "cpus_per_actor")
LISTED_FAILURES = 20  # failures listed at the end; all of them are in OUT/report.json

BATCH_EPILOG = """\
examples:
  painterly batch photos/ --styles starry.jpg -o out/
  painterly batch imagenet/train --styles paintings/ -o stylized/ --seed 0 --format jpg   # Stylized-ImageNet
  painterly batch photos/ --styles paintings/ -o out/ --alpha 0.5 --alpha-max 1.0        # alpha per image
  painterly batch pairs.csv -o out/                        # columns: content, style, output, alpha
  painterly batch photos/ --styles paintings/ -o out/ --dry-run
  painterly batch photos/ --styles paintings/ -o out/ --ray                # a local Ray
  painterly batch photos/ --styles paintings/ -o out/ --ray auto --batch-size 8   # this machine's cluster

A rerun skips the outputs that are complete (writes are atomic: a killed run leaves no half
file), so the same command resumes; --force redoes them. Several paintings: each photo gets a
random one, seeded by --seed and the photo's path, so every rerun gives the same pairs.
OUT_DIR/manifest.csv lists every output (content, style, alpha, seed, model, seconds) and is a
valid INPUT of another batch; OUT_DIR/report.json lists the failed inputs.
With --ray, write it after INPUT (or --ray=ADDRESS): "--ray photos/" takes photos/ as an address.
"""


def _flag_kwargs(f: dataclasses.Field, hint: Any) -> dict[str, Any]:
    meta = dict(f.metadata)
    kwargs: dict[str, Any] = {"help": meta.pop("help", f.name.replace("_", " "))}
    args = [a for a in typing.get_args(hint) if a is not type(None)] \
        if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    t = args[0]
    if t is bool:
        return {**kwargs, "action": "store_true"}
    if typing.get_origin(t) is list:
        kwargs["nargs"] = "+"
    elif t is int:
        kwargs["type"] = int_at_least(0) if f.name == "size" else positive_int
    elif t is float:
        kwargs["type"] = number(0, 1)
    kwargs.update({k: v for k, v in meta.items() if k in ("choices", "metavar")})
    return kwargs


def option_flags() -> list[tuple[str, dict[str, Any]]]:
    """(field, add_argument kwargs) for every field of ``BatchOptions``, flag ``--field-name``."""
    from ..batch import BatchOptions

    hints = typing.get_type_hints(BatchOptions)
    return [(f.name, _flag_kwargs(f, hints[f.name])) for f in dataclasses.fields(BatchOptions)]


def add_batch_parser(sub: Any) -> None:
    """Register ``batch`` on the ``painterly`` command's subparsers."""
    p = sub.add_parser("batch", help="stylize a whole collection (resumable; --ray for a cluster)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BATCH_EPILOG,
                       description="Stylize every photo of INPUT (a folder, walked recursively, or a manifest: "
                                   "CSV or Parquet) with the fast method into OUT_DIR, mirroring INPUT's tree.")
    p.add_argument("input", metavar="INPUT", help="a folder of photos, or a manifest (.csv, .parquet)")
    p.add_argument("--styles", nargs="+", default=[], metavar="STYLE",
                   help="painting files and/or folders of paintings: one = every photo gets it; several = "
                        "a seeded random one per photo (a manifest's style column wins)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (created)")
    p.add_argument("--dry-run", action="store_true", help="count the work and estimate the time; write nothing")
    g = p.add_argument_group("options (painterly.batch.BatchOptions)")
    for name, kwargs in option_flags():
        g.add_argument("--" + name.replace("_", "-"), dest=name, default=argparse.SUPPRESS, **kwargs)
    g = p.add_argument_group("Ray")
    g.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="run on Ray Data: alone, a local Ray; 'auto' or HOST:PORT (or ray://HOST:PORT) joins a "
                        'cluster (needs: pip install "painterly[ray]")')
    g.add_argument("--ray-cpus", type=positive_int, metavar="N", help="CPUs of a local Ray (default: all)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (failures are still listed)")
    p.set_defaults(func=cmd_batch)


def _options(args: argparse.Namespace):
    from ..batch import BatchOptions
    from ..errors import CLIError
    from ..errors import StyleTransferError

    names = {f.name for f in dataclasses.fields(BatchOptions)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if values.get("size") == 0:
        values["size"] = None  # --size 0: each photo's own size
    if args.ray is None:
        for name in RAY_ONLY:
            if name in values:
                raise CLIError(f"--{name.replace('_', '-')} only applies with --ray")
    elif "workers" in values:
        raise CLIError("--workers only applies without --ray (use --actors)")
    if args.ray is None and args.ray_cpus is not None:
        raise CLIError("--ray-cpus only applies with --ray")
    options = BatchOptions(**values)
    try:
        options.validate()
    except StyleTransferError as exc:  # the values came from flags: a usage error, named as flags
        message = str(exc)
        for name in sorted(names, key=len, reverse=True):
            flag = "--" + name.replace("_", "-")
            if "_" in name:
                message = re.sub(rf"\b{name}\b", flag, message)
            elif message.startswith(name + " "):
                message = flag + message[len(name):]
        raise CLIError(message) from None
    return options


def _reason(last) -> str:
    error, content = last.error, last.task.content
    return error[len(content) + 2:] if error.startswith(content + ": ") else error


class _Bar:
    """The progress bar (images/s, time left) and the one line per failed input."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None

    def __call__(self, state) -> None:
        from tqdm import tqdm

        if state.last.status == "failed":
            tqdm.write(f"{PROG}: skipped {state.last.task.content}: {_reason(state.last)}", file=sys.stderr)
        if self.quiet:
            return
        if self.bar is None:
            self.bar = tqdm(total=state.total, desc="batch", unit="img", dynamic_ncols=True, file=sys.stderr)
        self.bar.update(state.processed - self.bar.n)
        if state.failed:
            self.bar.set_postfix(failed=state.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_dry_run(report, options, ray) -> None:
    from ..batch.options import available_cores
    from ..plan import format_seconds

    print(report.summary())
    todo = report.total - report.skipped
    if todo:
        where = "on this machine" + (" (a Ray cluster divides it by its cores / this machine's)" if ray else "")
        print(f"estimate: about {format_seconds(report.estimate_s or 0)} {where}, {available_cores()} cores, "
              "from figures measured with the large model on 2 AVX2 cores (the slim model is several times faster)")


def cmd_batch(args: argparse.Namespace) -> int:
    from .. import batch

    options = _options(args)
    bar = _Bar(args.quiet)
    try:
        report = batch(args.input, args.output, args.styles, options, ray=args.ray, dry_run=args.dry_run,
                       progress=bar, ray_cpus=args.ray_cpus)
    finally:
        bar.close()
    if args.dry_run:
        _print_dry_run(report, options, args.ray)
        return 0
    print(report.summary())
    if report.failed:
        print(f"{PROG}: {len(report.failed)} input(s) failed (all listed in {args.output}/report.json):",
              file=sys.stderr)
        for item in report.failed[:LISTED_FAILURES]:
            print(f"  {item['content']}", file=sys.stderr)
        if len(report.failed) > LISTED_FAILURES:
            print(f"  ... and {len(report.failed) - LISTED_FAILURES} more", file=sys.stderr)
    return 0 if report.ok else 1


add_parser = add_batch_parser  # the cli package registers each command by this name
