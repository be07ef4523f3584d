"""The look test of the fast mode: fast vs optimisation on the same pairs, by eye and by measure.

Content photos from ``../shared/data/examples/content/`` (never trained on), styles from
``../shared/data/train/style/`` (paintings) and the web page's built-in styles. For each pair it
writes a grid row ``photo | style | fast | optimize`` and prints the common measure of
``bench_optimize.common_measure`` (our content + Gram style loss with the same VGG19 and the
optimiser's default weights; lower is better) and the time of each method.

The optimisation results do not depend on the fast model, so they are cached in ``--cache``
(a 512 px optimisation takes ~2-5 min here): rerun with a new model and only fast is redone.

    python benchmarks/fast_vs_optimize.py -o runs/look.png
    python benchmarks/fast_vs_optimize.py --model runs/bundle.safetensors --transform adain -o look-adain.png
    python benchmarks/fast_vs_optimize.py --skip-optimize -o fast-only.png     # no optimisation column
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_optimize import common_measure  # noqa: E402
from fast_grid import _cell  # noqa: E402  (fit inside a square, centred on white)
from painterly import OptimizeOptions, load_image, save_image  # noqa: E402
from painterly.image import fit_size, from_array, resize  # noqa: E402
from painterly.stylizers.fast import FastOptions, stylize_fast  # noqa: E402
from painterly.stylizers.optimize import stylize_optimize  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = [  # (content photo, style): paintings, then the web page's built-in styles
    ("tubingen", "starry_night"),
    ("golden_gate", "the_scream"),
    ("brad_pitt", "jcj_kandinsky_composition_vii"),
    ("sailboat", "la_muse"),
    ("lenna", "jcj_stained_glass_mosaic_woman"),
    ("hoovertowernight", "aesust_monet_water_lilies"),
    ("avril", "web:swirls"),
    ("cornell", "web:waves"),
    ("flowers", "web:stained-glass"),
]


def load_style(name: str) -> torch.Tensor:
    if name.startswith("web:"):
        from painterly.web.styles import style_array

        key = name[4:]
        try:
            return from_array(style_array(key))
        except KeyError:  # the web's older name of the demo style
            return from_array(style_array(key.rstrip("s")))
    return load_image(DATA / "train" / "style" / f"{name}.jpg").rgb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="fast model file (default: the built-in model)")
    p.add_argument("--transform", choices=("wct", "adain"), default="adain")
    p.add_argument("--levels", nargs="+", help="fast levels (default: all the model has)")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--cell", type=int, default=256)
    p.add_argument("--pairs", type=int, default=len(PAIRS))
    p.add_argument("--cache", default="runs/fast_vs_optimize", help="folder of cached optimisation results")
    p.add_argument("--skip-optimize", action="store_true")
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    opt_options = OptimizeOptions()
    fast_options = FastOptions(model=args.model, transform=args.transform, levels=args.levels, alpha=args.alpha,
                               device="cpu")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    sums = {"fast": 0.0, "optimize": 0.0}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, transform {args.transform}, "
          f"levels {args.levels or 'all'}, alpha {args.alpha}, {args.size} px")
    print(f"{'pair':48s} {'fast Q':>9s} {'(c, s)':>20s} {'fast s':>7s} {'optim Q':>9s} {'(c, s)':>20s} {'optim s':>8s}")
    for cname, sname in PAIRS[: args.pairs]:
        content = load_image(DATA / "examples" / "content" / f"{cname}.jpg").rgb
        content = resize(content, fit_size(*content.shape[-2:], size=args.size))
        style = load_style(sname)
        t0 = time.perf_counter()
        fast = stylize_fast(content, [style], fast_options)
        t_fast = time.perf_counter() - t0
        qf = common_measure(fast, content, style, opt_options)
        cells = [_cell(content, args.cell), _cell(style, args.cell), _cell(fast, args.cell)]
        line = f"{cname + ' + ' + sname:48s} {qf[0]:9.3g} ({qf[1]:8.3g}, {qf[2]:8.3g}) {t_fast:7.2f}"
        sums["fast"] += qf[0]
        if not args.skip_optimize:
            cached = cache / f"{cname}+{sname.replace(':', '-')}_{args.size}.png"
            t_opt = float("nan")
            if cached.is_file():
                slow = load_image(cached).rgb
            else:
                t0 = time.perf_counter()
                slow = stylize_optimize(content, [style], opt_options)
                t_opt = time.perf_counter() - t0
                save_image(slow, cached, overwrite=True)
            qo = common_measure(slow, content, style, opt_options)
            sums["optimize"] += qo[0]
            cells.append(_cell(slow, args.cell))
            line += f" {qo[0]:9.3g} ({qo[1]:8.3g}, {qo[2]:8.3g}) {t_opt:8.1f}"
        print(line, flush=True)
        rows.append(torch.cat(cells, dim=3))
    save_image(torch.cat(rows, dim=2), args.output, overwrite=True)
    n = min(args.pairs, len(PAIRS))
    summary = f"mean-Q fast {sums['fast'] / n:.4g}"
    if not args.skip_optimize:
        summary += f" optimize {sums['optimize'] / n:.4g} ratio {sums['fast'] / max(sums['optimize'], 1e-12):.2f}"
    print(summary)


if __name__ == "__main__":
    main()
