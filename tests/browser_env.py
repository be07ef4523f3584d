"""What the real-browser tests share: Debian's Chromium and the flags it needs on this closed network."""
import os

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    """Skip the calling test module when Chromium is missing (CI installs it: .ci/install-browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (bash .ci/install-browser)", allow_module_level=True)


def launch(playwright):
    """A headless Chromium browser for a ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
