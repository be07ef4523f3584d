"""What several commands share: the program name and its error line, the generated stylize
flags and the options they make, the progress bar of a stylization, a training config from its
flags."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .. import clioptions as co
from ..errors import CLIError, StyleTransferError
from ..stylizers.weights import check_style_weights

PROG = "painterly"


def error_line(message: str) -> None:
    """``painterly: error: MESSAGE`` on stderr, on one line."""
    message = " ".join(str(message).split())
    print(f"{PROG}: error: {message}", file=sys.stderr)


def add_stylize_flags(p: argparse.ArgumentParser, mask_help: str) -> list[co.FlagSpec]:
    """The flags of :class:`OptimizeOptions` and :class:`FastOptions` (generated), in a group
    per method, plus ``--mask FILE`` (fast); returns their specs."""
    groups = {
        co.SHARED: p.add_argument_group("style (both methods)"),
        co.OPTIMIZE: p.add_argument_group("optimisation (--method optimize)"),
        co.FAST: p.add_argument_group("fast mode (--method fast)"),
    }
    specs = co.stylize_flags()
    for spec in specs:
        spec.add_to(groups[spec.method])
    groups[co.FAST].add_argument("--mask", action="append", metavar="FILE", help=mask_help)
    return specs


def method_options(args: argparse.Namespace, specs: Sequence[co.FlagSpec], method: str,
                   n_styles: int) -> tuple[str, Any]:
    """(method, OptimizeOptions or FastOptions) from the generated flags the user gave.

    ``specs``: every generated flag of the command (a spec tagged with a method, like the video's
    ``--warm-steps``, belongs to that method). ``auto`` picks the method whose flags are given,
    else ``stylize()``'s rule; a flag of the other method is a usage error, as are style weights
    that do not fit the styles, a bad ``--device`` and values the options class refuses.
    """
    from .. import resolve_device, resolve_method

    values = co.given(args, specs)
    only = {m: [co.flag_of(k, specs) for k in values if co.method_of(k, specs) == m] for m in (co.OPTIMIZE, co.FAST)}
    if getattr(args, "mask", None):
        only[co.FAST].append("--mask")
    if method == "auto":
        if only[co.OPTIMIZE] and only[co.FAST]:
            raise CLIError(f"{only[co.OPTIMIZE][0]} is an option of --method optimize and {only[co.FAST][0]} of "
                           "--method fast: choose one --method")
        method = resolve_method(method, co.FAST if only[co.FAST] else co.OPTIMIZE if only[co.OPTIMIZE] else None)
    else:
        other = co.FAST if method == "optimize" else co.OPTIMIZE
        if only[other]:
            raise CLIError(f"{only[other][0]} only applies to --method {other}")
    try:
        check_style_weights(values.get("style_weights"), n_styles)
    except StyleTransferError as exc:
        raise CLIError(str(exc).replace("style weights", "--style-weights", 1)) from None
    try:
        resolve_device(values.get("device", "auto"))
    except ValueError as exc:
        raise CLIError(f"--device: {exc}") from None
    opt_cls, fast_cls = co.option_classes()
    options = co.build_options(opt_cls if method == "optimize" else fast_cls, values)
    validate_flags(lambda: options.validate(n_styles), specs)
    return method, options


def validate_flags(check: Any, specs: Sequence[co.FlagSpec]) -> None:
    """Run ``check()``; an options class's refusal of values that came from flags is a usage
    error (exit 2) that names the flags."""
    try:
        check()
    except StyleTransferError as exc:
        raise CLIError(co.name_flags(str(exc), specs)) from None


def progress(quiet: bool, desc: str):
    """A tqdm bar driven by the stylizer's callback(step, total, loss); returns (callback, close)."""
    if quiet:
        return None, lambda: None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def callback(step: int, total: int, loss: float) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr)
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return callback, close


def add_run_flags(p: argparse.ArgumentParser, out_holds: str, content: str = "folder of photos",
                  style: str = "folder of paintings") -> None:
    """The flags every training command shares (``train``, ``distill``, ``tune``): ``--content
    DIR --style DIR --out RUN_DIR`` (``out_holds``: what the run folder holds) and ``--resume``;
    :func:`run_config` reads them back."""
    p.add_argument("--content", required=True, metavar="DIR", help=content)
    p.add_argument("--style", required=True, metavar="DIR", help=style)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help=f"run folder ({out_holds})")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.safetensors")


def run_config(args: argparse.Namespace, cls: type, skip: set[str]) -> Any:
    """A training config (``TrainConfig``, ``DistillConfig``, ``TuneConfig``) from ``--content DIR --style DIR
    --out RUN_DIR`` and the generated flags; the folders must exist, and a value the config
    refuses came from a flag: a usage error (exit 2)."""
    for flag, folder in (("--content", args.content), ("--style", args.style)):
        if not Path(folder).is_dir():
            raise StyleTransferError(f"{flag} {folder}: no such folder")
    cfg = cls(content_dir=args.content, style_dir=args.style, out_dir=args.out, **co.config_values(args, cls, skip))
    try:
        cfg.validate()
    except StyleTransferError as exc:
        raise CLIError(str(exc)) from None
    return cfg
