"""The page in a real browser: headless Chromium (Debian's package) driven by Playwright.

A real uvicorn server runs on a free loopback port with a fast stub engine (so no model is
needed); the test uploads a photo through the page's file input, picks a style, presses
Stylize and waits until the result image is shown and decoded. Screenshots are written to
``$PAINTERLY_SCREENSHOT_DIR`` (default: the system temp folder) for a person to look at.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
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
uvicorn = pytest.importorskip("uvicorn")
require_chromium()

from painterly.web import Settings, create_app  # noqa: E402
from painterly.web.engine import Task  # noqa: E402


class GatedStub:
    """Posterised content tinted with the style's mean colour, reporting progress in quarters.

    A test that wants to see a job running sets ``gate`` (a ``threading.Event``): the job then
    stops at 50 % until the test opens the gate, so the page's polling (every 150-300 ms) sees
    that state however fast or slow the machine is; no sleeps, no race."""

    HOLD_AT = 0.5

    def __init__(self):
        self.gate: threading.Event | None = None
        self.tasks: list[Task] = []

    def modes(self):
        return {"fast": True, "optimize": True}

    def run(self, task: Task, progress):
        self.tasks.append(task)
        gate = self.gate
        for i in range(4):
            progress(i / 4)
            if gate is not None and i / 4 == self.HOLD_AT and not gate.wait(60):
                raise RuntimeError("the test never opened the gate")
        tint = task.styles[0].mean(dim=(2, 3), keepdim=True)
        out = (torch.round(task.content * 4) / 4) * 0.5 + tint * 0.5
        return (task.alpha * out + (1 - task.alpha) * task.content).clamp(0, 1)


@contextlib.contextmanager
def held(engine):
    """Jobs started inside the block wait at the engine's hold point until the block ends (also
    when it raises: a job left waiting would hold the server's only worker)."""
    engine.gate = gate = threading.Event()
    try:
        yield
    finally:
        engine.gate = None
        gate.set()


@pytest.fixture(scope="module")
def stub():
    return GatedStub()


@pytest.fixture(scope="module")
def server_url(stub):
    with serving(create_app(Settings(workers=1, max_queue=4, result_ttl=600), stub)) as url:
        yield url


def _format_seconds(s: float) -> str:
    """The page's formatSeconds."""
    s = max(0, round(s))
    if s < 1:
        return "less than a second"
    if s < 60:
        return f"{s} s"
    m, r = divmod(s, 60)
    return f"{m} min {r} s" if r else f"{m} min"


def _estimate_text(url: str, width: int, height: int, size: int, method: str) -> str:
    import httpx

    r = httpx.get(url + "/api/v1/estimate", params={"width": width, "height": height, "size": size, "method": method})
    return "about " + _format_seconds(r.json()["seconds"])


def _picture(path: Path, w: int, h: int) -> Path:
    rng = np.random.default_rng(w + h)
    arr = (np.linspace(0, 1, h)[:, None, None] * np.array([200, 120, 60]) + rng.integers(0, 50, (h, w, 3)))
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture()
def photo(tmp_path) -> Path:
    """A small photo-like picture: sky gradient, sun, hills."""
    h, w = 180, 240
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 0.35 + 0.4 * y / h
    img[..., 1] = 0.55 + 0.2 * y / h
    img[..., 2] = 0.95 - 0.3 * y / h
    sun = (x - 170) ** 2 + (y - 50) ** 2 < 22 ** 2
    img[sun] = (1.0, 0.85, 0.3)
    hills = y > 120 + 18 * np.sin(x / 25)
    img[hills] = np.stack([0.2 + 0.1 * np.sin(x / 7), 0.5 + 0.1 * np.cos(y / 5), 0.25 + 0 * x], -1)[hills]
    path = tmp_path / "landscape.jpg"
    Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(path, quality=92)
    return path


def _screenshot_dir() -> Path:
    d = Path(os.environ.get("PAINTERLY_SCREENSHOT_DIR", tempfile.gettempdir()))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _launch(p):
    return launch(p)


def test_page_upload_stylize_shows_result(server_url, stub, photo):
    errors: list[str] = []
    with playwright_sync.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = watched_page(browser, errors)
            page.goto(server_url + "/", wait_until="networkidle")
            assert "Painterly" in page.title()
            # Built-in styles arrive with thumbnails that actually decoded.
            page.wait_for_selector(".style-tile[data-style]")
            tiles = page.locator(".style-tile[data-style]")
            assert tiles.count() >= 4
            page.wait_for_function("() => [...document.querySelectorAll('.style-tile img')].filter(i => i.src)"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            assert page.locator("#stylize").is_disabled()
            assert page.inner_text("#q-fast-time").startswith("about ")  # from the server's measured speed

            page.set_input_files("#photo-input", str(photo))
            page.wait_for_selector("#original-img:not([hidden])")
            # the photo is 240 px: no 512 px choice that would give a 240 px result anyway
            assert page.locator("#size-choices label").all_inner_texts() == ["Full · 240 px"]
            assert page.locator("#size-choices input:checked").get_attribute("value") == "240"
            # the time estimates are for this photo at that size, not for a default one
            for q in ("fast", "optimize"):
                want = _estimate_text(server_url, 240, 180, 240, q)
                page.wait_for_function(f"() => document.getElementById('q-{q}-time').textContent === {want!r}")
            tiles.nth(1).click()
            assert tiles.nth(1).get_attribute("aria-checked") == "true"
            # the Fast mode has its strength control (issue 17): the library's alpha
            assert page.is_checked("#q-fast") and page.locator("#strength").is_visible()
            page.fill("#strength", "80")
            page.dispatch_event("#strength", "input")
            assert page.inner_text("#strength-value") == "80%"
            page.click(".switch:has(#keep-colors)")
            # Live progress shows the server's percentage while the job runs (held at 50 %).
            with held(stub):
                page.click("#stylize")
                page.wait_for_selector("#progress:not([hidden])")
                page.wait_for_function("() => document.getElementById('progress-text').textContent"
                                       " === 'Stylizing · 50%'", timeout=30_000)
                assert page.locator("#result-img").is_hidden() and page.is_disabled("#stylize")
                page.locator(".stage").screenshot(path=str(_screenshot_dir() / "painterly-page-progress.png"))
            page.wait_for_selector("#result-img:not([hidden])", timeout=20_000)
            page.wait_for_function("() => document.getElementById('result-img').complete && "
                                   "document.getElementById('result-img').naturalWidth > 0", timeout=10_000)
            size = page.evaluate("[document.getElementById('result-img').naturalWidth, "
                                 "document.getElementById('result-img').naturalHeight]")
            assert size == [240, 180]
            assert page.locator("#progress").is_hidden()
            assert page.locator("#download").is_visible()
            assert page.get_attribute("#download", "download").endswith(".png")
            # the page asked in the library's words: alpha 0.8, preserve_color, method fast
            task = stub.tasks[-1]
            assert (task.alpha, task.preserve_color, task.method) == (0.8, "luminance", "fast")
            # The result differs from the original (the stub really ran on the uploaded photo).
            assert page.locator("#error").is_hidden()
            page.wait_for_selector("#recent-list .recent-item")
            assert page.locator("#recent-list .recent-item").count() == 1
            # labelled by the photo (then the style and when)
            assert page.inner_text("#recent-list .recent-item strong") == "landscape.jpg"
            assert tiles.nth(1).inner_text() in page.inner_text("#recent-list .recent-item span")
            assert page.get_attribute("#download", "download").startswith("landscape-")
            page.wait_for_timeout(400)  # let the fade-in finish for the screenshot
            shot = _screenshot_dir() / "painterly-page-desktop.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            # Phone-sized viewport: the same page, stacked, still usable.
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                     has_touch=True)
            phone.on("pageerror", lambda exc: errors.append(str(exc)))
            phone.goto(server_url + "/", wait_until="networkidle")
            phone.wait_for_selector(".style-tile[data-style]")
            phone.set_input_files("#photo-input", str(photo))
            phone.wait_for_selector("#original-img:not([hidden])")
            # the previews stay in view while the user scrolls down to the Stylize button
            for target in ("#style-grid", "#stylize"):
                phone.locator(target).scroll_into_view_if_needed()
                phone.wait_for_timeout(100)
                box = phone.locator("#original-img").bounding_box()
                assert box["y"] >= -1 and box["y"] + box["height"] <= 844 + 1, (target, box)
            phone.screenshot(path=str(_screenshot_dir() / "painterly-page-phone-scrolled.png"))
            phone.click("#stylize")
            phone.wait_for_selector("#result-img:not([hidden])", timeout=20_000)
            phone.wait_for_function("() => document.getElementById('result-img').naturalWidth > 0")
            phone.wait_for_timeout(400)
            phone.screenshot(path=str(_screenshot_dir() / "painterly-page-phone.png"), full_page=True)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"page scrolls sideways on a phone ({width}px)"
        finally:
            browser.close()
    assert not errors, errors


def test_page_refuses_a_text_file_at_once(server_url, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture at all" * 10)
    with playwright_sync.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page()
            page.goto(server_url + "/", wait_until="networkidle")
            page.wait_for_selector(".style-tile[data-style]")
            page.set_input_files("#photo-input", str(bad))
            page.wait_for_selector("#error:not([hidden])", timeout=5_000)  # before any Stylize click
            assert "not an image" in page.inner_text("#error") and "notes.png" in page.inner_text("#error")
            assert page.locator("#stylize").is_disabled()
            assert page.locator("#original-img").is_hidden() and page.locator(".dz-chosen").is_hidden()
            assert page.inner_text("#hint") == "Choose a photo to start."
        finally:
            browser.close()


def test_portrait_photo_fits_its_preview(server_url, tmp_path):
    portrait = _picture(tmp_path / "portrait.png", 76, 96)
    with playwright_sync.sync_playwright() as p:
        browser = _launch(p)
        try:
            for viewport in ({"width": 1280, "height": 900}, {"width": 390, "height": 844}):
                page = browser.new_page(viewport=viewport)
                page.goto(server_url + "/", wait_until="networkidle")
                page.wait_for_selector(".style-tile[data-style]")
                page.set_input_files("#photo-input", str(portrait))
                page.wait_for_selector("#original-img:not([hidden])")
                img = page.locator("#original-img").bounding_box()
                frame = page.locator("#original-img").locator("xpath=..").bounding_box()
                assert img["height"] <= frame["height"] + 0.5 and img["width"] <= frame["width"] + 0.5, (img, frame)
                page.click("#stylize")
                page.wait_for_selector("#result-img:not([hidden])", timeout=20_000)
                page.wait_for_function("() => document.getElementById('result-img').naturalWidth > 0")
                res = page.locator("#result-img").bounding_box()
                assert res["height"] <= frame["height"] + 0.5, (res, frame)
                page.screenshot(path=str(_screenshot_dir() / f"painterly-page-portrait-{viewport['width']}.png"))
                page.close()
        finally:
            browser.close()


def test_size_choices_follow_method_and_photo(server_url, tmp_path):
    big = _picture(tmp_path / "big.jpg", 1200, 900)
    with playwright_sync.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server_url + "/", wait_until="networkidle")
            page.wait_for_selector(".style-tile[data-style]")
            labels = lambda: page.locator("#size-choices label").all_inner_texts()  # noqa: E731
            checked = lambda: page.locator("#size-choices input:checked").get_attribute("value")  # noqa: E731
            assert page.is_checked("#q-fast")  # fast is the default method
            assert labels() == ["512 px", "1024 px", "2048 px", "3840 px"] and checked() == "1024"
            page.click("label[for=q-optimize]")
            assert labels() == ["512 px", "768 px", "1024 px"] and checked() == "512"
            page.click("label[for=q-fast]")
            page.set_input_files("#photo-input", str(big))
            page.wait_for_selector("#original-img:not([hidden])")
            assert labels() == ["512 px", "1024 px", "Full · 1200 px"] and checked() == "1024"
            page.click("#size-choices label:has-text('Full')")
            assert checked() == "1200"
            want = _estimate_text(server_url, 1200, 900, 1200, "fast")
            page.wait_for_function(f"() => document.getElementById('q-fast-time').textContent === {want!r}")
            page.click("label[for=q-optimize]")
            assert labels() == ["512 px", "768 px", "1024 px"] and checked() == "512"
        finally:
            browser.close()


def test_api_reference_page_renders_offline(server_url):
    errors: list[str] = []
    with playwright_sync.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server_url + "/api", wait_until="networkidle")
            page.wait_for_selector(".endpoint")
            heads = page.locator(".endpoint h3").all_inner_texts()
            assert any("POST" in h and "/api/v1/jobs" in h for h in heads)
            assert any("/api/v1/stylize" in h for h in heads)
            assert "alpha" in page.inner_text("#endpoints") and "preserve_color" in page.inner_text("#endpoints")
            page.screenshot(path=str(_screenshot_dir() / "painterly-api-reference.png"))
        finally:
            browser.close()
    assert not errors, errors


class GatedVideoEngine:
    """The library's video path with tiny stand-in networks. With ``gate`` set (see ``held``), a
    video job stops after frame ``HOLD_FRAME`` until the test opens the gate, so the page is
    seen showing frame progress."""

    HOLD_FRAME = 6

    def __init__(self):
        from painterly.encoders import VGG19Encoder
        from painterly.models import Decoder
        from painterly.web.engine import LibraryEngine

        torch.manual_seed(0)
        decoder = Decoder(in_channels=32, width=0.125, input_scale=1e-3).eval()
        with torch.no_grad():  # a random decoder outputs ~0; this one follows the content
            decoder.net[-1].bias.fill_(0.5)
            decoder.net[-1].weight.mul_(20.0)
        self.library = LibraryEngine(device="cpu", encoder=VGG19Encoder(width_divisor=16), decoder=decoder)
        self.gate: threading.Event | None = None

    def modes(self):
        return {"fast": True, "optimize": True}

    def run(self, task, progress):
        return self.library.run(task, progress)

    def run_video(self, task, progress, output):
        gate = self.gate

        def gated(done, total):
            progress(done, total)
            if gate is not None and done == self.HOLD_FRAME and not gate.wait(60):
                raise RuntimeError("the test never opened the gate")

        return self.library.run_video(task, gated, output)


@pytest.fixture(scope="module")
def video_engine():
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    return GatedVideoEngine()


@pytest.fixture(scope="module")
def video_server_url(video_engine):
    with serving(create_app(Settings(workers=1, max_queue=4, result_ttl=600), video_engine)) as url:
        yield url


def test_page_stylizes_a_video_and_plays_it(video_server_url, video_engine, photo, tmp_path):
    from test_video import make_clip, pan_frames

    clip = make_clip(tmp_path / "walk.mp4", frames=pan_frames(12, 72, 96), fps=12)
    errors: list[str] = []
    with playwright_sync.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = watched_page(browser, errors)
            page.goto(video_server_url + "/", wait_until="networkidle")
            page.wait_for_selector(".style-tile[data-style]")
            assert "video/*" in page.get_attribute("#photo-input", "accept")
            page.set_input_files("#photo-input", str(clip))
            # the clip is previewed in a <video>, read by this browser (size and length)
            page.wait_for_selector("#original-video:not([hidden])")
            page.wait_for_function("() => document.getElementById('original-video').videoWidth === 96")
            assert page.locator("#original-img").is_hidden()
            assert page.inner_text("#photo-info").startswith("96 × 72 · 1.0 s")
            # fast only: optimize and on-device are for photos, and the page says so
            assert page.is_checked("#q-fast") and page.is_disabled("#q-optimize") and page.is_disabled("#q-device")
            assert "photos only" in page.inner_text("#video-note") and page.locator("#video-note").is_visible()
            assert page.locator("#temporal-field").is_visible() and page.is_checked("#temporal")
            assert page.locator("#size-choices label").all_inner_texts() == ["Full · 96 px"]
            with held(video_engine):  # frame progress while the job runs (held after frame 6)
                page.click("#stylize")
                page.wait_for_function("() => document.getElementById('progress-text').textContent"
                                       " === 'Stylizing · frame 6 of 12 · 50%'", timeout=30_000)
                assert page.locator("#result-video").is_hidden()
                page.locator(".stage").screenshot(path=str(_screenshot_dir() / "painterly-page-video-progress.png"))
            # the result plays in a <video controls>, with an MP4 download
            page.wait_for_selector("#result-video:not([hidden])", timeout=60_000)
            page.wait_for_function("() => { const v = document.getElementById('result-video');"
                                   " return v.readyState >= 2 && v.videoWidth === 96 && v.videoHeight === 72; }",
                                   timeout=20_000)
            assert page.get_attribute("#result-video", "controls") is not None
            page.evaluate("() => { const v = document.getElementById('result-video'); v.muted = true; v.play(); }")
            page.wait_for_function("() => document.getElementById('result-video').currentTime > 0.2", timeout=10_000)
            duration = page.evaluate("document.getElementById('result-video').duration")
            assert abs(duration - 1.0) < 0.1, duration
            assert page.locator("#result-img").is_hidden() and page.locator("#error").is_hidden()
            assert page.inner_text("#download") == "Download MP4" and page.locator("#download-jpeg").is_hidden()
            assert page.get_attribute("#download", "download").startswith("walk-")
            assert page.get_attribute("#download", "download").endswith(".mp4")
            assert "12 frames" in page.inner_text("#result-meta")
            page.wait_for_selector("#recent-list .recent-item")
            page.screenshot(path=str(_screenshot_dir() / "painterly-page-video.png"), full_page=True)

            # back to a photo: everything as before
            page.set_input_files("#photo-input", str(photo))
            page.wait_for_selector("#original-img:not([hidden])")
            assert page.locator("#original-video").is_hidden() and page.locator("#video-note").is_hidden()
            assert not page.is_disabled("#q-optimize") and page.locator("#temporal-field").is_hidden()
            page.click("#stylize")
            page.wait_for_selector("#result-img:not([hidden])", timeout=20_000)
            assert page.locator("#result-video").is_hidden() and page.inner_text("#download") == "Download PNG"
            assert page.locator("#download-jpeg").is_visible()
        finally:
            browser.close()
    assert not errors, errors


def test_page_refuses_a_too_long_video_at_once(video_server_url, tmp_path):
    import httpx

    from test_video import make_clip

    limit = httpx.get(video_server_url + "/api/v1/health").json()["limits"]["max_video_seconds"]
    clip = make_clip(tmp_path / "long.mp4", n=int(limit * 2 + 4), fps=2, audio=False)  # ~limit + 2 s
    with playwright_sync.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page()
            page.goto(video_server_url + "/", wait_until="networkidle")
            page.wait_for_selector(".style-tile[data-style]")
            page.set_input_files("#photo-input", str(clip))
            page.wait_for_selector("#error:not([hidden])", timeout=10_000)
            assert "Trim it first" in page.inner_text("#error")
            assert page.locator("#stylize").is_disabled() and page.locator("#original-video").is_hidden()
        finally:
            browser.close()
