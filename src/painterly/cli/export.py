"""``painterly export -o OUT``: the fast model as ONNX for apps (:mod:`painterly.export`)."""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import StyleTransferError
from ..models.decoder import LEVELS
from ..export import DEFAULT_OPSET, OPSETS, check_opset, export_onnx
from ..stylizers.fast_model import TRANSFORMS


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``painterly export`` on the CLI's subparsers."""
    p = sub.add_parser("export", help="export the fast model to ONNX for apps",
                       description="Write the fast stylizer (every level of the model, its own transform or --transform) as ONNX "
                                   "into the folder OUT: "
                                   "style_encoder.onnx (style -> statistics), stylizer.onnx (content, "
                                   "statistics, alpha -> image), model.json and MODEL_CARD.md. "
                                   "See docs/onnx.md.")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="folder to create (never replaced "
                                                                          "without --force)")
    p.add_argument("--model", metavar="FILE", help="a model file, or a built-in model: slim or large (default: the default one)")
    p.add_argument("--fp16", action="store_true", help="float16 weights: half the size, float32 arithmetic")
    p.add_argument("--opset", type=_opset_arg, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset {OPSETS.start}..{OPSETS.stop - 1} (default {DEFAULT_OPSET})")
    p.add_argument("--levels", nargs="+", metavar="LEVEL", choices=tuple(reversed(LEVELS)),
                   help="levels to export, run deepest first (default: every level of the model; "
                        "relu4_1 alone is about twice as quick, with a softer look)")
    p.add_argument("--transform", choices=TRANSFORMS,
                   help="the feature transform in the graphs (default: the model's own; mixed for the built-in slim model)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_export)
    return p


def _opset_arg(text: str) -> int:
    """``--opset N``: a whole number in :data:`~painterly.export.OPSETS`."""
    try:
        return check_opset(int(text))
    except (ValueError, StyleTransferError) as exc:
        raise argparse.ArgumentTypeError(str(exc) if isinstance(exc, StyleTransferError)
                                         else f"expected a whole number, got {text!r}") from None


def cmd_export(args: argparse.Namespace) -> int:
    """Export the model (checked first), then say what was written."""
    from ..stylizers import fast

    if args.model:
        fast.check_model_arg(args.model)
    if not args.model and not fast.default_model_available():
        raise StyleTransferError("no built-in fast model is installed: pass --model FILE "
                                 "(a decoder trained with `painterly train`)")
    result = export_onnx(args.output, args.model, fp16=args.fp16, opset=args.opset, overwrite=args.force,
                         levels=args.levels, transform=args.transform)
    sizes = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in result.files.items() if name.endswith(".onnx"))
    print(f"wrote {result.folder} ({sizes}) in {result.seconds:.1f} s")
    return 0
