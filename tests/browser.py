"""Headless Chromium for the admin page's browser tests, driven by Playwright.

Debian's ``chromium`` (``/usr/bin/chromium``, or ``VIPGATE_TEST_CHROMIUM``) is used: Playwright
cannot download its own browser on a machine without internet. Without it the browser tests
fail, so a missing browser is never mistaken for a pass; ``VIPGATE_TEST_SKIP_BROWSER=1`` skips
them on purpose. Screenshots of each page go to ``docs/screenshots/`` (the README shows them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
# Headless, no sandbox (root in CI), and nothing that reaches for the internet: the machine's
# closed network refuses it, many connections at a time.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--disable-extensions"]


def chromium_path() -> str:
    if os.environ.get("VIPGATE_TEST_SKIP_BROWSER") == "1":
        pytest.skip("VIPGATE_TEST_SKIP_BROWSER=1")
    path = os.environ.get("VIPGATE_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not path:
        pytest.fail("Chromium is not installed (Debian: apt-get install chromium; "
                    "scripts/prerequisites does it)")
    return path


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot as docs/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
