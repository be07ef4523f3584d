"""The page's on-device mode in real headless Chromium: onnxruntime-web (from npm) runs the ONNX
export of a tiny stand-in model in the browser, and the canvas must match PyTorch's output of the
same model on the same photo and built-in style. Also: the page says so when the mode is
unavailable. Screenshots go to ``$PAINTERLY_SCREENSHOT_DIR`` (default: the temp folder)."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from browser_env import launch, require_chromium, serving, watched_page

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="browser test skipped: playwright is not installed (pip install -e '.[test]')")
pytest.importorskip("fastapi")
pytest.importorskip("onnx")
uvicorn = pytest.importorskip("uvicorn")
require_chromium()

from painterly import export  # noqa: E402
from painterly.image import from_array, transfer_luminance  # noqa: E402
from painterly.stylizers import fast  # noqa: E402
from painterly.web import Settings, create_app, ondevice, styles  # noqa: E402


class NoServerStylizer:
    """The server's own modes are off: everything on the page below happens in the browser."""

    def modes(self):
        return {"fast": False, "optimize": False}

    def run(self, task, progress):  # pragma: no cover - never called
        raise AssertionError("the on-device mode must not call the server's stylizer")


@pytest.fixture()
def photo(tmp_path) -> Path:
    """A 96x72 landscape-like picture (smaller than any size the page asks: never resized)."""
    h, w = 72, 96
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.35 + 0.4 * y / h, 0.55 + 0.2 * np.sin(x / 9), 0.95 - 0.3 * y / h], -1)
    img[(x - 70) ** 2 + (y - 20) ** 2 < 100] = (1.0, 0.85, 0.3)
    path = tmp_path / "landscape.png"
    Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(path)
    return path


def _screenshot(page, name):
    d = Path(os.environ.get("PAINTERLY_SCREENSHOT_DIR", tempfile.gettempdir()))
    d.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(d / name), full_page=True)


@pytest.mark.parametrize("source", ["networks", "slim model file"])
def test_on_device_matches_python(tmp_path, monkeypatch, tiny_encoder, tiny_levels, tiny_model_file, photo, source):
    """The browser runs the same four-level cascade as the server's default fast mode: given
    networks (AdaIN), or a model file that carries its own encoder stopping at relu4_1 and names
    the mixed transform (as the slim model does: WCT at the shallow levels, by Newton-Schulz in
    the graphs)."""
    if ondevice.find_ort_dir() is None:
        pytest.skip("on-device browser test skipped: onnxruntime-web is not installed; run `npm ci "
                    "--ignore-scripts` in the repository (needs Node.js) before the tests")
    if source == "networks":
        encoder, decoders, transform = tiny_encoder, tiny_levels, "adain"
        folder = export.export_onnx(tmp_path / "model", encoder=encoder, decoder=decoders).folder
    else:
        from painterly import checkpoint as ck

        tensors, meta = ck.load(tiny_model_file)
        model_file = ck.atomic_save(tensors, tmp_path / "slim-like.safetensors", {**meta, "transform": "mixed"})
        stylizer = fast.FastStylizer.from_model(str(model_file), "cpu")
        encoder, decoders, transform = stylizer.encoder, stylizer.decoders, stylizer.transform
        assert encoder.last_layer == "relu4_1" and transform == "mixed"
        folder = export.export_onnx(tmp_path / "model", str(model_file)).folder
        assert json.loads((folder / "model.json").read_text())["transform"] == "mixed"
    assert len(json.loads((folder / "model.json").read_text())["levels"]) == 4
    monkeypatch.setenv(ondevice.MODEL_ENV, str(folder))
    errors: list[str] = []
    uploads: list[str] = []
    with serving(create_app(Settings(workers=1), NoServerStylizer())) as url:
        with playwright_sync.sync_playwright() as p:
            browser = launch(p)
            page = watched_page(browser, errors)
            page.set_default_timeout(120000)  # a busy 2-core machine
            page.on("request", lambda r: uploads.append(r.url) if r.method != "GET" else None)
            page.goto(url + "/", wait_until="networkidle")
            page.wait_for_selector("#q-device:not([disabled])", timeout=120000)
            page.set_input_files("#photo-input", str(photo))
            page.wait_for_selector(".style-tile[data-style][aria-checked=true]")
            name = page.get_attribute(".style-tile[data-style][aria-checked=true]", "data-style")
            page.click("label[for=q-device]")
            page.click("#stylize")
            page.wait_for_function("() => window.PainterlyOnDevice.last !== null", timeout=240000)
            page.wait_for_selector("#result-img:not([hidden])")
            rgba = page.evaluate("""() => { const c = window.PainterlyOnDevice.last.canvas;
                return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
            size = page.evaluate("() => [window.PainterlyOnDevice.last.width, window.PainterlyOnDevice.last.height]")
            meta = page.text_content("#result-meta")
            _screenshot(page, "ondevice-result.png")
            cached = page.evaluate("async () => (await caches.open('painterly-ondevice-v1')).keys().then(k => k.length)")
            # a second run, keeping the photo's colours (reuses the model and the style's statistics)
            page.evaluate("() => { window.PainterlyOnDevice.last = null; }")
            page.click(".switch:has(#keep-colors)")
            page.click("#stylize")
            page.wait_for_function("() => window.PainterlyOnDevice.last !== null", timeout=240000)
            rgba_keep = page.evaluate("""() => { const c = window.PainterlyOnDevice.last.canvas;
                return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
            browser.close()
    assert not errors, errors
    assert uploads == []  # nothing was posted: the photo never left the browser
    assert "this browser" in meta
    assert cached == 2
    assert size == [96, 72]
    got = np.array(rgba, np.float32).reshape(72, 96, 4)[..., :3] / 255
    content = from_array(np.asarray(Image.open(photo).convert("RGB")))
    style = from_array(np.asarray(Image.open(io.BytesIO(styles.image_jpeg(name))).convert("RGB")))
    ref = fast.stylize_fast(content, [style], fast.FastOptions(device="cpu", transform=transform), encoder=encoder,
                            decoder=decoders)
    ref = ref[0].permute(1, 2, 0).numpy()
    assert ref.std() > 0.03  # the stand-in model's output depends on its input
    diff = np.abs(got - ref)
    print(f"on-device vs PyTorch: mean abs {diff.mean():.4f}, max {diff.max():.4f}")
    assert diff.mean() < 0.005, diff.mean()  # measured 0.0010 (8-bit canvas, JPEG decoders)
    keep = np.array(rgba_keep, np.float32).reshape(72, 96, 4)[..., :3] / 255
    ref_keep = transfer_luminance(torch.from_numpy(ref).permute(2, 0, 1)[None], content)[0].permute(1, 2, 0).numpy()
    assert np.abs(keep - ref).mean() > 0.02  # the colours did change
    assert np.abs(keep - ref_keep).mean() < 0.005, np.abs(keep - ref_keep).mean()


def test_page_says_when_on_device_is_unavailable(monkeypatch):
    monkeypatch.setattr(ondevice, "find_ort_dir", lambda: None)
    with serving(create_app(Settings(workers=1), NoServerStylizer())) as url:
        with playwright_sync.sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.set_default_timeout(120000)
            page.goto(url + "/", wait_until="networkidle")
            page.wait_for_selector("#ondevice-note:not([hidden])", timeout=120000)
            note = page.text_content("#ondevice-note")
            assert page.is_disabled("#q-device")
            assert page.text_content("#q-device-time") == "unavailable here"
            browser.close()
    assert "On-device mode is unavailable: onnxruntime-web is not installed" in note
