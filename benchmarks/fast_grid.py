"""A comparison grid for judging a fast (AdaIN) model by eye.

Top row: the styles; then one row per content photo: the photo, then its stylizations.
Images are scikit-image names (``astronaut``, ``chelsea``, ``coffee``, ``rocket``,
``hubble_deep_field``, ...), ``swirl`` (the package's procedural demo style) or file paths.

    python benchmarks/fast_grid.py --model runs/default/model.safetensors \
        --contents astronaut chelsea --styles swirl hubble_deep_field -o grid.png
    python benchmarks/fast_grid.py ... --method optimize     # the same grid, Gatys optimisation
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from painterly import stylize
from painterly.demo import swirl_style
from painterly.image import fit_size, from_array, load_image, resize, save_image
from painterly.stylizers.fast import FastOptions


def named_image(name: str) -> torch.Tensor:
    if name == "swirl":
        return swirl_style()
    if "/" in name or "." in name:
        return load_image(name).rgb
    from skimage import data

    return from_array(getattr(data, name)())


def _cell(image: torch.Tensor, side: int) -> torch.Tensor:
    """Fit inside side x side, centred on white."""
    h, w = fit_size(*image.shape[-2:], size=side)
    img = resize(image, (h, w))
    top, left = (side - h) // 2, (side - w) // 2
    return F.pad(img, (left, side - w - left, top, side - h - top), value=1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contents", nargs="+", default=["astronaut", "chelsea", "rocket"])
    p.add_argument("--styles", nargs="+", default=["swirl", "hubble_deep_field", "immunohistochemistry"])
    p.add_argument("--model", help="decoder model.safetensors (default: built-in)")
    p.add_argument("--method", choices=("fast", "optimize"), default="fast")
    p.add_argument("--size", type=int, default=384, help="longest side of each stylization")
    p.add_argument("--cell", type=int, default=256, help="side of a grid cell")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    styles = [named_image(s) for s in args.styles]
    rows = [torch.cat([torch.ones(1, 3, args.cell, args.cell)] + [_cell(s, args.cell) for s in styles], dim=3)]
    t0 = time.perf_counter()
    for name in args.contents:
        content = named_image(name)
        content = resize(content, fit_size(*content.shape[-2:], size=args.size))
        cells = [_cell(content, args.cell)]
        for style in styles:
            opts = FastOptions(model=args.model) if args.method == "fast" else None
            cells.append(_cell(stylize(content, [style], method=args.method, options=opts), args.cell))
        rows.append(torch.cat(cells, dim=3))
    save_image(torch.cat(rows, dim=2), args.output, overwrite=True)
    n = len(args.contents) * len(styles)
    print(f"{args.output}: {n} stylizations in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
