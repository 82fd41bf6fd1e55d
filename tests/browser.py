"""Headless Chromium for the admin page's browser tests, driven by Playwright.

Debian's ``chromium`` (``/usr/bin/chromium``, or ``VIPGATE_TEST_CHROMIUM``) is used: Playwright
cannot download its own browser on a machine without internet. Without it the browser tests
fail, so a missing browser is never mistaken for a pass; ``VIPGATE_TEST_SKIP_BROWSER=1`` skips
them on purpose. Screenshots of each page go to ``build/screenshots/`` (ignored by git, so a
test run leaves the tree clean); ``make screenshots`` (``VIPGATE_UPDATE_SCREENSHOTS=1``) writes
them to ``docs/screenshots/``, which the README shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = (_ROOT / "docs" / "screenshots" if os.environ.get("VIPGATE_UPDATE_SCREENSHOTS")
               == "1" else _ROOT / "build" / "screenshots")
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
    """Save a full-page screenshot as NAME.png in :data:`SCREENSHOTS`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, shared by a module's tests (this file is a pytest plugin,
    loaded by conftest.py)."""
    path = chromium_path()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def watched_page(browser: Any, base_url: str, width: int, height: int) -> Iterator[Any]:
    """A page in a fresh context; script errors and CSP violations in its console fail the
    test (an HTTP error status, such as a wrong password's 401, is the page's answer, not a
    fault of the page)."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  base_url=base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    yield page
    context.close()
    assert not errors, f"the browser console reported: {errors}"
