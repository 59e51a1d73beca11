"""``report -f pdf``: the HTML report printed by headless Chromium, for a board pack.

Chromium is driven through Playwright (the optional extra ``pacsradar[pdf]``), with the
Debian/Ubuntu ``chromium`` when installed, else Playwright's own download. The page is loaded
from a private temporary file with JavaScript disabled and every network request refused: the
report is self-contained (inline CSS and SVG) and its CSP allows no fetch anyway. The print
stylesheet (``report.css`` ``@media print``) repeats table headers and keeps rows, Fix-first
items and charts whole across pages.

When Playwright or a Chromium is missing, :class:`~pacsradar.errors.UsageError` says, in one
line, what to install (exit 2, as for a missing database driver).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pacsradar.errors import UsageError
from pacsradar.report.context import ReportContext
from pacsradar.report.html import render_html

#: Chromium binaries tried in order after ``PACSRADAR_CHROMIUM``.
CHROMIUM_CANDIDATES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome", "chrome")
MISSING = (
    "PDF output needs Chromium through Playwright: pip install 'pacsradar[pdf]', then "
    "apt install chromium (or: playwright install chromium)"
)
#: Bounds: a report is a few hundred kB of HTML; a stuck browser must not hang the CLI.
TIMEOUT_MS = 60_000
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run")


def chromium_path() -> str | None:
    """The Chromium to drive: ``PACSRADAR_CHROMIUM``, else one on PATH, else None (Playwright's)."""
    configured = os.environ.get("PACSRADAR_CHROMIUM")
    if configured:
        return configured
    return next((p for name in CHROMIUM_CANDIDATES if (p := shutil.which(name))), None)


def render_pdf(ctx: ReportContext) -> bytes:
    """The board pack: the report's print layout (every Fix-first step open) as A4 PDF."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise UsageError(MISSING) from None
    html = render_html(ctx, board=True)
    # Playwright's sync API refuses to run in a thread with an event loop (the dashboard, a
    # test's browser): one worker thread of its own, always.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pacsradar-pdf") as pool:
        return pool.submit(_print, html).result()


def _print(html: str) -> bytes:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="pacsradar-pdf-") as tmp:
        page_file = Path(tmp) / "report.html"
        page_file.write_text(html, encoding="utf-8")
        os.chmod(page_file, 0o600)
        try:
            with sync_playwright() as pw:
                try:
                    browser = pw.chromium.launch(
                        executable_path=chromium_path(), headless=True, args=list(ARGS), timeout=TIMEOUT_MS
                    )
                except PlaywrightError:
                    raise UsageError(MISSING) from None
                try:
                    context = browser.new_context(java_script_enabled=False)
                    context.route("**/*", _only(page_file.as_uri()))
                    page = context.new_page()
                    page.goto(page_file.as_uri(), timeout=TIMEOUT_MS)
                    data: bytes = page.pdf(
                        format="A4", print_background=True, prefer_css_page_size=True, outline=True
                    )
                finally:
                    browser.close()
        except PlaywrightError as exc:
            # Our words only: Playwright's message may quote the page (peer strings).
            raise UsageError(f"Chromium could not print the report ({type(exc).__name__})") from None
    return data


def _only(uri: str) -> Any:
    def handle(route: Any) -> None:
        if route.request.url == uri:
            route.continue_()
        else:
            route.abort()

    return handle


__all__ = ["MISSING", "chromium_path", "render_pdf"]
