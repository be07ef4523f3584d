"""What the tests with a real server or a real browser share: a uvicorn server in a thread,
Debian's Chromium and the flags it needs on this closed network."""
import contextlib
import os
import socket
import threading
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    """Skip the calling test module when Chromium is missing (CI installs it: .ci/install-browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser test skipped: {CHROMIUM} is not installed; run `bash .ci/install-browser` "
                    "(as root) before the tests", allow_module_level=True)


def launch(playwright):
    """A headless Chromium browser for a ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def watched_page(browser, errors: list, width: int = 1280, height: int = 900):
    """A new page whose script errors and console errors are appended to ``errors``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return page


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` with uvicorn on a free local port, in a thread; yields its base URL and
    stops the server on exit."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
