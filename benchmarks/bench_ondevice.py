"""Benchmark of the page's on-device mode: the built-in model's ONNX export run by onnxruntime-web
(WebAssembly) in headless Chromium, against onnxruntime (Python) on the same graph and photo.

Serves the page with ``$PAINTERLY_ONDEVICE_MODEL`` set to a fresh fp16 export, picks a photo,
runs "On this device" through ``window.PainterlyOnDevice.stylize`` at each size, and prints
the browser's seconds (first run: model download and session start; then warm runs), the
backend it used, and the same image's time with onnxruntime in Python (one thread, as the page
has one without cross-origin isolation). Needs Chromium (.ci/install-browser) and ``npm ci``.

    python benchmarks/bench_ondevice.py --sizes 256 512
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--repeats", type=int, default=2, help="warm runs per size (default 2)")
    args = p.parse_args()

    import os

    import onnxruntime as ort
    from browser_env import launch, serving, watched_page
    from playwright.sync_api import sync_playwright
    from PIL import Image
    from skimage import data

    from painterly import export
    from painterly.web import Settings, create_app, ondevice, styles

    if ondevice.find_ort_dir() is None:
        raise SystemExit("onnxruntime-web is not installed: run `npm ci` in the repository")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ondevice-"))
    folder = export.export_onnx(tmp / "model", fp16=True).folder
    os.environ[ondevice.MODEL_ENV] = str(folder)
    photo = tmp / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    style_name = styles.names()[0]
    style_path = tmp / "style.jpg"
    style_path.write_bytes(styles.image_jpeg(style_name))

    class NoServer:
        def modes(self):
            return {"fast": False, "best": False}

    rows = []
    with serving(create_app(Settings(workers=1), NoServer())) as url, sync_playwright() as pw:
        browser = launch(pw)
        errors: list[str] = []
        page = watched_page(browser, errors)
        page.set_default_timeout(600_000)
        page.goto(url + "/", wait_until="networkidle")
        page.wait_for_selector("#q-device:not([disabled])")
        page.set_input_files("#photo-input", str(photo))
        for i, side in enumerate(args.sizes):
            runs = []
            for r in range(args.repeats + (1 if i == 0 else 0)):
                res = page.evaluate("""async ([side]) => {
                    const input = document.getElementById('photo-input').files[0];
                    const r = await window.PainterlyOnDevice.stylize(
                        {photo: input, style: '/api/v1/styles/%s/image', styleKey: 'bench', strength: 1, size: side});
                    return [r.seconds, r.backend, r.width, r.height];
                }""" % style_name, [side])
                runs.append(res)
            first = runs[0][0] if i == 0 else None
            warm = [r[0] for r in (runs[1:] if i == 0 else runs)]
            rows.append((side, runs[-1][2], runs[-1][3], runs[-1][1], first, min(warm)))
        browser.close()
        if errors:
            print("browser errors:", errors)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    enc = ort.InferenceSession(str(folder / "style_encoder.onnx"), opts, providers=["CPUExecutionProvider"])
    sty = ort.InferenceSession(str(folder / "stylizer.onnx"), opts, providers=["CPUExecutionProvider"])
    style = np.asarray(Image.open(style_path).convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255
    stats = enc.run(None, {"style": style})[0]
    mb = sum(f.stat().st_size for f in folder.glob("*.onnx")) / 1e6
    print(f"on-device (onnxruntime-web) vs onnxruntime in Python: the built-in model's fp16 export ({mb:.1f} MB), "
          f"style {style_name!r}")
    for side, w, h, backend, first, warm in rows:
        content = np.random.default_rng(0).random((1, 3, h, w), np.float32)
        feed = {"content": content, "statistics": stats, "alpha": np.ones(1, np.float32)}
        sty.run(None, feed)
        t0 = time.perf_counter()
        sty.run(None, feed)
        py = time.perf_counter() - t0
        print(f"  {w}x{h}: browser ({backend}) {warm:.1f} s warm" + (f", {first:.1f} s first run" if first else "")
              + f"; Python onnxruntime {py:.1f} s; ratio {warm / py:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
