"""Pack the model files of several training runs into one fast-mode model bundle (fp16).

Each run folder holds a ``model.safetensors`` written by ``painterly train`` (one decoder,
one level); the bundle holds them all, keyed by level, with the encoder settings they share.
Prints, per level: steps trained, the last logged losses (mean of the last 10 rows of
``metrics.csv``) and the bundle's size.

    python tools/pack_model.py runs/relu4_1 runs/relu3_1 runs/relu2_1 runs/relu1_1 \
        -o src/painterly/assets/fast_model.safetensors
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from painterly.encoders.student import read_student
from painterly.stylizers.fast_model import read_model, save_bundle


def last_losses(run: Path, rows: int = 10) -> dict[str, float]:
    path = run / "metrics.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))[-rows:]
    keys = [k for k in ("pixel", "feature", "content", "style") if table and table[-1].get(k)]
    return {k: sum(float(r[k]) for r in table if r.get(k)) / len(table) for k in keys}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (or model files)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (default fp16: half the size)")
    p.add_argument("--student", help="the student encoder the decoders were trained on (a slim model); "
                                     "stored in the bundle, which then runs on it instead of the full VGG19")
    args = p.parse_args()
    files = []
    for run in map(Path, args.runs):
        model = run / "model.safetensors" if run.is_dir() else run
        files.append(model)
        fm = read_model(model)
        level, dec = next(iter(fm.decoders.items()))
        losses = ", ".join(f"{k} {v:.4g}" for k, v in last_losses(run if run.is_dir() else run.parent).items())
        print(f"{level}: step {fm.step}, {sum(p.numel() for p in dec.parameters()):,} parameters"
              + (f", last losses {losses}" if losses else ""))
    student = read_student(args.student) if args.student else None
    out = save_bundle(files, args.output, half=not args.fp32, student=student)
    print(f"{out}: {out.stat().st_size / 2**20:.2f} MiB")
    packed = read_model(out)
    print(f"levels {', '.join(packed.decoders)}; encoder {packed.settings}"
          + ("; carries its student encoder" if packed.encoder is not None else ""))


if __name__ == "__main__":
    main()
