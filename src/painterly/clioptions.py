"""Command-line flags generated from the options dataclasses: one generator
(:func:`dataclass_flags`) for ``stylize``, ``video``, ``train`` and ``distill``.

Every field of :class:`~painterly.stylizers.optimize.OptimizeOptions` and
:class:`~painterly.stylizers.fast.FastOptions` becomes a flag (``early_stop_patience`` ->
``--early-stop-patience``) whose type follows the field's annotation, whose default is the
dataclass's, and whose help comes from :data:`OVERRIDES` (or the field name). A field added to a
dataclass gets its flag without CLI work; :data:`OVERRIDES` only adds help, old flag names and
special parsers. Flags are parsed with ``default=SUPPRESS``, so :func:`given` tells which
options the user set: the rest keep the dataclass defaults, written down once.

A field of both classes (``device``, ``preserve_color``, ``style_weights``) is one flag shared by
both methods; a field of one class is a flag of that method only. The video command adds
:class:`~painterly.video.VideoOptions`' flags, the training commands their config's
(:func:`add_config_flags`).
"""
from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .argtypes import int_at_least, number
from .encoders.vgg import POOLINGS
from .image import PRESERVE_COLORS
from .models.decoder import LEVELS
from .stylizers.fast import BACKENDS, TRANSFORMS
from .stylizers.optimize_options import INITS, OPTIMIZERS

SHARED = "shared"
OPTIMIZE = "optimize"
FAST = "fast"


def _steps(text: str) -> int | list[int]:
    """``300`` (budget of the coarsest scale) or ``300,80,20`` (every scale, coarse to fine)."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,... (whole numbers), got {text!r}") from None
    if any(p < 0 for p in parts) or sum(parts) < 1:
        raise argparse.ArgumentTypeError(f"step counts must be >= 0 and not all 0, got {text!r}")
    return parts[0] if len(parts) == 1 else parts


def _layers(text: str) -> dict[str, float]:
    """``relu4_2`` or ``relu1_1:1,relu2_1:0.5`` -> {layer: weight}."""
    from .encoders import LAYER_NAMES

    out: dict[str, float] = {}
    for item in text.split(","):
        name, _, weight = item.strip().partition(":")
        if name not in LAYER_NAMES:
            raise argparse.ArgumentTypeError(f"unknown VGG19 layer {name!r} (use relu1_1 ... relu5_4)")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight {weight!r} in {text!r}") from None
        if not (w >= 0 and math.isfinite(w)):
            raise argparse.ArgumentTypeError(f"layer weights must be >= 0, got {weight!r}")
        out[name] = w
    return out


def _preserve_color(text: str) -> str | None:
    return None if text == "none" else text


# Per field: help, and where needed other flag names, a parser, choices, a metavar, more flags on
# the same field, or "skip" (not a flag: the CLI fills it itself).
OVERRIDES: dict[str, dict[str, Any]] = {
    # both methods
    "style_weights": dict(help="blend weights, one per STYLE (normalised to sum 1; default equal)",
                          metavar="W", default_text=False),
    "preserve_color": dict(type=_preserve_color, choices=("none", *PRESERVE_COLORS),
                           help="keep the photo's colours: luminance = transfer brightness only, exact photo "
                                "colours; histogram = recolour the style to the photo's palette first",
                           shown_default="none"),
    "device": dict(help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps"),
    # optimize
    "optimizer": dict(choices=OPTIMIZERS, help="lbfgs converges in far fewer steps than adam"),
    "lr": dict(help="step size (default 1.0 for lbfgs, 0.02 for adam)", default_text=False),
    "steps": dict(type=_steps, metavar="N[,N...]",
                  help="steps of the coarsest scale, each finer scale 1/--step-decay as many (at least "
                       "--min-steps); or one count per scale, coarse to fine, e.g. 300,80,20"),
    "step_decay": dict(metavar="R", help="ratio of the step counts of successive scales (4 = equal time per scale)"),
    "min_steps": dict(help="fewest steps of any scale when --steps is one number"),
    "max_work": dict(metavar="MPX", type=number(0, lo_open=True),
                     help="cap on the schedule's total work in megapixel-steps (steps x pixels summed over "
                          "the scales; ~15-20 s each on 2 CPU cores): big outputs get fewer steps per scale",
                     extra=[(("--no-max-work",), dict(action="store_const", const=None,
                                                       help="no cap: every output size gets the full --steps "
                                                            "schedule"))]),
    "scales": dict(metavar="N", help="number of scales (default: halve until the longest side is ~--coarse-size)",
                   default_text=False),
    "coarse_size": dict(metavar="PX", help="halve the output while its longest side stays >= PX to get the "
                                           "coarsest scale (smaller = faster but loses small details)"),
    "init": dict(choices=INITS, help="start image"),
    "content_weight": dict(metavar="W", help="weight of the content term"),
    "style_weight": dict(metavar="W", help="higher = more style"),
    "tv_weight": dict(metavar="W", help="smoothness (total variation) weight"),
    "content_layers": dict(type=_layers, metavar="L[:W],...", help="content layers and weights"),
    "style_layers": dict(type=_layers, metavar="L[:W],...", help="style layers and weights"),
    "normalize_style_layers": dict(help="divide each style layer's weight by its channel count squared"),
    "style_scale": dict(metavar="F", type=number(0, lo_open=True),
                        help="style image area relative to the output: < 1 = smaller brush strokes"),
    "early_stop_tol": dict(flags=("--early-stop", "--early-stop-tol"), metavar="TOL",
                           help="stop a scale when the loss improves by less than TOL (relative) over "
                                "--early-stop-patience steps; 0 = off"),
    "early_stop_patience": dict(metavar="N", help="steps the early stop looks back"),
    "seed": dict(help="random seed (reproducible noise init of the optimisation; the fast method is "
                      "deterministic)",
                 default_text=False),
    "pooling": dict(choices=POOLINGS, help="VGG19 pooling"),
    "weights": dict(metavar="FILE", help="torchvision vgg19 state dict (.pth/.safetensors) instead of the "
                                         "built-in Caffe VGG19", default_text=False),
    "snapshot_every": dict(metavar="N", help="save the image every N steps into --snapshot-dir"),
    "snapshot_dir": dict(metavar="DIR", help="folder for snapshots (default: OUT's name + _snapshots)",
                         default_text=False),
    # fast
    "transform": dict(choices=TRANSFORMS,
                      help="feature transform: adain (keeps the photo readable), wct (whitening-colouring: "
                           "stronger, wilder) or mixed (adain at the deep levels, wct at the shallow ones); "
                           "default: the one the model was tuned with (mixed for the built-in slim model, "
                           "else adain)", default_text=False),
    "levels": dict(metavar="LEVEL", choices=tuple(reversed(LEVELS)),
                   help="encoder levels to run, deepest first (default: every level the model has)",
                   default_text=False),
    "backend": dict(choices=BACKENDS,
                    help="run the networks in torch or onnxruntime (CPU; exported to ONNX once, then cached)"),
    "alpha": dict(type=number(0, 1), help="0 = photo, 1 = full style"),
    "masks": dict(skip=True),  # --mask FILE, loaded by the CLI
    "tile": dict(metavar="PX", help="tile side for big images (default: the largest that fits in memory)",
                 default_text=False),
    "model": dict(metavar="FILE", help="a model file, or a built-in model: slim (the default when installed: "
                                      "a distilled 1/4-width network, ~8x faster) or large (full VGG19)",
                  default_text=False),
}

# The fast method has no randomness: --seed is accepted with it (and ignored) so scripts that pass
# a seed whatever the method keep working.
SEED_ANY_METHOD = "seed"


@dataclass
class FlagSpec:
    """One generated flag: the dataclass field it sets, which method it belongs to, add_argument kwargs."""

    name: str
    method: str
    flags: tuple[str, ...]
    kwargs: dict[str, Any]
    extra: list[tuple[tuple[str, ...], dict[str, Any]]] = field(default_factory=list)

    def add_to(self, parser: Any) -> None:
        parser.add_argument(*self.flags, dest=self.name, default=argparse.SUPPRESS, **self.kwargs)
        for flags, kwargs in self.extra:
            parser.add_argument(*flags, dest=self.name, default=argparse.SUPPRESS, **kwargs)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(k if v == 1 else f"{k}:{v:g}" for k, v in value.items())
    return str(value)


def _parser_for(hint: Any) -> dict[str, Any] | None:
    """add_argument kwargs for a field's type annotation; None = no flag can express it."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    if len(args) != 1:
        return None
    t = args[0]
    origin = typing.get_origin(t)
    if t is bool:
        return dict(action=argparse.BooleanOptionalAction)
    if t is int:
        return dict(type=int_at_least(-(2 ** 63)), metavar="N")
    if t is float:
        return dict(type=number(), metavar="X")
    if t is str:
        return dict(metavar=None)
    if origin in (list, tuple, collections.abc.Sequence):
        item, *rest = typing.get_args(t) or (str,)
        if item in (int, float, str) and (not rest or rest == [Ellipsis]):
            return dict(nargs="+", type={int: int_at_least(-(2 ** 63)), float: number(), str: str}[item])
    return None


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def option_classes() -> tuple[type, type]:
    from .stylizers.fast import FastOptions
    from .stylizers.optimize import OptimizeOptions

    return OptimizeOptions, FastOptions


def dataclass_flags(cls: type, overrides: dict[str, dict[str, Any]] | None = None, skip: Sequence[str] = (),
                    method: str = SHARED) -> list[FlagSpec]:
    """One flag per field of the options dataclass ``cls``, in field order: ``--field-name``, typed
    by the field's annotation, default the dataclass's (shown in the help), help and the rest from
    ``overrides[field]`` (keys as in :data:`OVERRIDES`; ``method`` tags a field of one method).
    Fields in ``skip``, or of a type no flag can express, get none."""
    overrides = overrides or {}
    specs = []
    for name, (f, hint) in _fields(cls).items():
        spec = None if name in skip else _flag(name, f, hint, overrides.get(name, {}), method)
        if spec is not None:
            specs.append(spec)
    return specs


def _flag(name: str, f: dataclasses.Field, hint: Any, over: dict[str, Any], method: str) -> FlagSpec | None:
    """The flag of one field, or ``None`` (skipped, or a type no flag can express)."""
    if over.get("skip"):
        return None
    kwargs = _parser_for(hint) or {}
    if not kwargs and "type" not in over:
        return None  # a type no flag can express (tests list these, so none goes unnoticed)
    for key in ("type", "choices", "metavar"):
        if key in over:
            kwargs[key] = over[key]
    if kwargs.get("metavar", "") is None:
        kwargs.pop("metavar")
    if "choices" in over and over.get("type") is None:
        kwargs.pop("type", None)
    default = _default(f)
    text = over.get("help", name.replace("_", " "))
    if over.get("default_text", True) and default is not None:
        text += f" (default {over.get('shown_default', _show(default))})"
    kwargs["help"] = text
    flags = over.get("flags", ("--" + name.replace("_", "-"),))
    return FlagSpec(name, over.get("method", method), tuple(flags), kwargs, list(over.get("extra", [])))


def stylize_flags() -> list[FlagSpec]:
    """The generated flags, OptimizeOptions' fields first, then FastOptions'; a field of both
    classes (and ``seed``) is one flag shared by both methods."""
    opt_cls, fast_cls = option_classes()
    opt_names = {f.name for f in dataclasses.fields(opt_cls)}
    fast_names = {f.name for f in dataclasses.fields(fast_cls)}
    opt = dataclass_flags(opt_cls, OVERRIDES, method=OPTIMIZE)
    fast = dataclass_flags(fast_cls, OVERRIDES, skip=opt_names, method=FAST)
    for spec in opt:
        if spec.name in fast_names or spec.name == SEED_ANY_METHOD:
            spec.method = SHARED
    return opt + fast


def given(args: argparse.Namespace, specs: Sequence[FlagSpec]) -> dict[str, Any]:
    """{field: value} of the generated flags the user gave."""
    values = vars(args)
    return {s.name: values[s.name] for s in specs if s.name in values}


def method_of(name: str, specs: Sequence[FlagSpec]) -> str:
    return next(s.method for s in specs if s.name == name)


def flag_of(name: str, specs: Sequence[FlagSpec]) -> str:
    return next(s.flags[0] for s in specs if s.name == name)


def build_options(cls: Callable[..., Any], values: dict[str, Any]) -> Any:
    """An options dataclass from the given values (the fields it has); the rest stay defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def name_flags(message: str, specs: Sequence[FlagSpec]) -> str:
    """An options class's validation message with its field names as the user's flags
    (``step_decay must be >= 1`` -> ``--step-decay must be >= 1``)."""
    for s in specs:
        if "_" in s.name:
            message = re.sub(rf"\b{s.name}\b", s.flags[0], message)
        elif message.startswith(s.name + " "):
            message = s.flags[0] + message[len(s.name):]
    return message


def add_config_flags(p: argparse.ArgumentParser, cls: type, skip: set[str], helps: dict[str, str],
                     overrides: dict[str, dict[str, Any]] | None = None) -> list[FlagSpec]:
    """Add :func:`dataclass_flags` of a config dataclass (``TrainConfig``, ``DistillConfig``,
    ``VideoOptions``) to ``p``, with ``helps[field]`` as help; returns the specs."""
    over: dict[str, dict[str, Any]] = {"max_minutes": dict(type=number(0, lo_open=True), metavar="MIN")}
    for name, text in helps.items():
        over[name] = {**over.get(name, {}), "help": text}
    for name, extra in (overrides or {}).items():
        over[name] = {**over.get(name, {}), **extra}
    specs = dataclass_flags(cls, over, skip)
    for spec in specs:
        spec.add_to(p)
    return specs


def config_values(args: argparse.Namespace, cls: type, skip: set[str]) -> dict[str, Any]:
    """The values of :func:`add_config_flags`' fields that the user gave (the rest keep the
    dataclass's defaults)."""
    values = vars(args)
    return {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name not in skip and f.name in values}
