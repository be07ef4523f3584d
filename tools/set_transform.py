"""Set the feature transform a fast model file runs by default (its ``"transform"`` metadata).

``painterly tune`` records the transform the decoders were tuned with; the built-in slim model
was tuned with AdaIN and measured best when *run* with ``mixed`` (docs/fast.md), so its file
names ``mixed``. Tensors and the rest of the metadata are copied unchanged; the output is written
atomically and an existing file is only replaced with ``--force``.

    python tools/set_transform.py runs/tuned/model.safetensors --transform mixed \
        -o src/painterly/assets/slim_model.safetensors --force
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from painterly import checkpoint as ckpt
from painterly.errors import StyleTransferError
from painterly.stylizers.fast_model import TRANSFORMS, read_model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a fast model file")
    p.add_argument("--transform", required=True, choices=TRANSFORMS)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    args = p.parse_args()
    out = Path(args.output)
    if out.exists() and not args.force:
        sys.exit(f"{out}: exists (pass --force to replace it)")
    try:
        read_model(args.model)
    except StyleTransferError as exc:
        sys.exit(f"{args.model}: {exc}")
    tensors, meta = ckpt.load(args.model)
    ckpt.atomic_save(tensors, out, {**meta, "transform": args.transform})
    model = read_model(out)
    print(f"wrote {out}: levels {', '.join(model.decoders)}, transform {model.transform}, "
          f"{out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
