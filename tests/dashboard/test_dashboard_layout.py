"""The dashboard with the report's rules, in real headless Chromium over a 56-finding store.

Ids, severities, ports, products and dates on one line, no cell spilling over, the Fix-first
list in the overview's first screen, and filters that live in the URL (a link from a filtered
view keeps the other filters). Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from dashlab import TOKEN, Dashboard

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))
import boardlab as B

from lab.chromium import NEEDS_CHROMIUM, chromium
from pacsradar.dashboard import DashboardServer, create_app
from pacsradar.store import Store

SCREEN = 900

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    db = tmp_path_factory.mktemp("board-dash") / "store.db"
    with Store(f"sqlite:///{db}") as store:
        for report in B.board_history():
            store.save_report(report)
        with DashboardServer(create_app(store, token=TOKEN), port=0) as url:
            yield Dashboard(url=url, store=store, db=db)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _page(browser: Any, board: Dashboard, width: int, path: str) -> Any:
    context = browser.new_context(viewport={"width": width, "height": SCREEN})
    page = context.new_page()
    page.goto(f"{board.url}{path}{'&' if '?' in path else '?'}token={TOKEN}")
    return page


@pytest.mark.parametrize("width", [1400, 1024])
def test_overview_opens_with_fix_first(width: int, browser: Any, board: Dashboard, artifacts: Path) -> None:
    # Given the dashboard over six scans / When the overview opens
    page = _page(browser, board, width, "/")
    page.screenshot(path=str(artifacts / f"dashboard-board-overview-{width}.png"), full_page=True)
    # Then the headline and the Fix-first list of the latest scan are in the first screen
    assert page.inner_text("#headline").startswith("at least 20 distinct patients")
    third = page.locator("#fix-first li.fix").nth(2).bounding_box()
    assert third is not None and third["y"] + third["height"] <= SCREEN
    assert page.inner_text("#fix-1 .fix-title") == "Require authentication on 2 Orthanc servers"
    # And nothing that should sit on one line wraps, and the charts stay in their boxes
    assert page.evaluate(B.WRAPPED_JS, B.ONE_LINE) == []
    assert page.evaluate(B.CHART_JS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.context.close()


@pytest.mark.parametrize("width", [1400, 1024])
def test_findings_table_fits(width: int, browser: Any, board: Dashboard, artifacts: Path) -> None:
    # Given the findings page of 56 open findings
    page = _page(browser, board, width, "/findings")
    page.screenshot(path=str(artifacts / f"dashboard-board-findings-{width}.png"), full_page=True)
    page.screenshot(path=str(artifacts / f"dashboard-board-findings-{width}-first-screen.png"))
    assert page.locator("tr.finding").count() == 56
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"dashboard findings height at {width} px: {height} px")
    # Then check ids, statuses and dates are on one line, no cell spills, no sideways scroll
    assert page.evaluate(B.WRAPPED_JS, B.ONE_LINE) == []
    assert page.evaluate(B.OVERLAP_JS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.context.close()


def test_filters_live_in_the_url(browser: Any, board: Dashboard, artifacts: Path) -> None:
    # Given the findings filtered on critical
    page = _page(browser, board, 1400, "/findings?severity=critical")
    assert page.url == f"{board.url}/findings?severity=critical"
    critical = page.locator("tr.finding").count()
    assert 0 < critical < 56
    # When a check id in the table is clicked
    link = page.locator("tr.finding td.c-check a").first
    check = link.inner_text()
    link.click()
    page.wait_for_url("**check_id=*")
    # Then the URL holds both filters, and so does the page
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"severity": ["critical"], "check_id": [check]}
    assert set(page.locator("tr.finding code.check-id").all_inner_texts()) == {check}
    assert set(page.locator("tr.finding .sev").all_inner_texts()) == {"CRITICAL"}
    assert (
        page.get_attribute("#permalink", "href") == urlsplit(page.url).path + "?" + urlsplit(page.url).query
    )
    # And a reload (or a shared link) shows the same view
    page.reload()
    assert set(page.locator("tr.finding code.check-id").all_inner_texts()) == {check}
    page.screenshot(path=str(artifacts / "dashboard-board-findings-filtered.png"), full_page=True)
    # And "clear filters" goes back to every open finding
    page.click("#clear-filters")
    page.wait_for_url(f"{board.url}/findings")
    assert page.locator("tr.finding").count() == 56
    page.context.close()
