"""The HTML report and its PDF as a board sees them: real headless Chromium (Debian's), 56 findings.

Layout is measured, not assumed: ids, severities, ports, products and dates on one line, no cell
spilling into the next, the page within 12,000 px at 1,400 and 1,024 px wide, the Fix-first list
in the first screen, every chart mark inside its box. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import boardlab as B

from lab.chromium import NEEDS_CHROMIUM, chromium
from pacsradar.errors import UsageError
from pacsradar.report import ReportContext, render
from pacsradar.report.pdf import MISSING, render_pdf
from pacsradar.store import Store

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
MAX_HEIGHT = 12_000
SCREEN = 900

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope="module")
def board_ctx(tmp_path_factory: pytest.TempPathFactory) -> ReportContext:
    """The 56-finding scan, the newest of six stored scans of its scope (a trend, first-seen dates)."""
    db = tmp_path_factory.mktemp("board") / "store.db"
    with Store(f"sqlite:///{db}") as store:
        for report in B.board_history():
            store.save_report(report)
        return ReportContext.from_store(store)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    return ARTIFACTS


@pytest.mark.parametrize("width", [1400, 1024])
def test_board_report_fits_and_reads(
    width: int, board_ctx: ReportContext, browser: Any, tmp_path: Path, artifacts: Path
) -> None:
    # Given the HTML report of 56 findings written to a file
    assert len(board_ctx.report.findings) == 56
    html = tmp_path / "report.html"
    html.write_text(render("html", board_ctx), encoding="utf-8")
    context = browser.new_context(viewport={"width": width, "height": SCREEN}, java_script_enabled=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # When Chromium opens it at the width of a laptop / a small screen
    page.goto(html.as_uri())
    page.screenshot(path=str(artifacts / f"report-board-{width}.png"), full_page=True)
    page.screenshot(path=str(artifacts / f"report-board-{width}-first-screen.png"))
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"report height at {width} px: {height} px")
    # Then the page is within the board's budget and never scrolls sideways
    assert height <= MAX_HEIGHT
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # And no id, severity, port, product or date is broken over lines, no cell spills over
    assert page.locator("code.check-id").count() == 56
    assert page.evaluate(B.WRAPPED_JS, B.ONE_LINE) == []
    assert page.evaluate(B.OVERLAP_JS) == []
    # And the Fix-first list, with its first actions, is in the first screen
    first = page.locator("#fix-first li.fix").nth(2).bounding_box()
    assert first is not None and first["y"] + first["height"] <= SCREEN
    assert page.inner_text("#fix-1 .fix-title") == "Require authentication on 2 Orthanc servers"
    assert page.inner_text("#fix-1 .protects") == "20 patients"
    # And the trend draws two labelled series, every mark inside its box
    assert page.locator("#trend svg polyline").count() == 2
    assert page.evaluate(B.CHART_JS) == []
    # And evidence reads as sentences: CVE lists folded, no raw JSON outside the <details>
    visible = page.evaluate(
        "[...document.querySelectorAll('td.c-finding')].map(td => [...td.childNodes]"
        ".filter(n => n.nodeName !== 'DETAILS').map(n => n.textContent).join(' ')).join('\\n')"
    )
    assert "Orthanc 1.12.3: 9 CVEs, fixed in 1.12.11, newest CVE-2026-5445" in visible
    assert not re.search(r'\[\s*"|":\s', visible)
    # And the HTTP server on the DICOM port 104 is an info row of its host
    assert "Port 104 answers HTTP, not DICOM" in page.inner_text("tr.not-dicom")
    # And hostile peer strings stay text: no element injected, no dialog
    assert B.HOSTILE in page.inner_text("body")
    assert page.locator("body script, body img").count() == 0
    assert dialogs == []
    context.close()


def test_pdf_board_pack(board_ctx: ReportContext, artifacts: Path) -> None:
    # Given the board scan / When printed through headless Chromium
    data = render_pdf(board_ctx)
    (artifacts / "report-board.pdf").write_bytes(data)
    # Then it is a PDF of a few A4 pages, and its text layer carries the Fix-first headline
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    print(f"board pack: {pages} pages, {len(data):,} bytes")
    assert 2 <= pages <= 12


def test_pdf_without_chromium_is_one_clear_line(
    board_ctx: ReportContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no usable Chromium
    monkeypatch.setenv("PACSRADAR_CHROMIUM", str(tmp_path / "no-chromium"))
    # When a PDF is asked for / Then a usage error says what to install, on one line
    with pytest.raises(UsageError) as info:
        render_pdf(board_ctx)
    assert str(info.value) == MISSING
    assert "\n" not in MISSING
