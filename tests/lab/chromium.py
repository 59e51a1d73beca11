"""Debian's Chromium, headless through Playwright, for the tests that measure a rendered page."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
#: ``pytestmark`` of a module that needs the browser
NEEDS_CHROMIUM = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (apt-packages.txt)"
)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (no sandbox: the tests run as root in a container), closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()
