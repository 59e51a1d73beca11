"""The dashboard and the HTML report in real headless Chromium (Debian's), with screenshots."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pacsradar_samples as S
import pytest
from dashlab import NEW_CHECK, TOKEN, Dashboard

from pacsradar.report import ReportContext, render

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (apt-packages.txt)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.requests = requests
    yield pg
    context.close()


def _only_local(requests: list[str], base: str) -> None:
    assert requests
    assert all(u.startswith((base, "file://", "data:")) for u in requests), requests


def test_overview_shows_exposure_and_trend(page: Any, dashboard: Dashboard, artifacts: Path) -> None:
    # Given the dashboard over two scans / When the login URL is opened in Chromium
    page.goto(f"{dashboard.url}/?token={TOKEN}")
    # Then the token is gone from the address bar, and the overview is rendered
    assert page.url == f"{dashboard.url}/"
    assert page.inner_text("#headline") == (
        "at least 125 distinct patients, 350 studies, 52,000 images exposed across 2 services"
    )
    assert page.locator("#trend svg polyline").count() == 2
    assert page.locator("#trend circle").count() == 4
    assert "2 scans of this scope." in page.inner_text("#trend")
    assert page.locator("#recent-scans tbody tr").count() == 2
    page.screenshot(path=str(artifacts / "dashboard-overview.png"), full_page=True)
    _only_local(page.requests, dashboard.url)


def test_findings_filters_and_escaping(page: Any, dashboard: Dashboard, artifacts: Path) -> None:
    # Given a signed-in browser on the findings page
    page.goto(f"{dashboard.url}/findings?token={TOKEN}")
    assert page.locator("tr.finding").count() == 5
    # When filtering on critical through the form
    page.select_option("select[name=severity]", "critical")
    page.click("button[type=submit]")
    page.wait_for_url("**/findings?*severity=critical*")
    # Then only the two critical findings remain
    rows = page.locator("tr.finding")
    assert rows.count() == 2
    assert set(page.locator("tr.finding .sev").all_inner_texts()) == {"CRITICAL"}
    # And the hostile banner shows as text: no element was injected, no dialog opened
    assert S.HOSTILE_BANNER in page.inner_text("#findings")
    assert page.locator("#findings script, #findings img").count() == 0
    page.screenshot(path=str(artifacts / "dashboard-findings-critical.png"), full_page=True)


def test_diff_page_reports_new_and_resolved(page: Any, dashboard: Dashboard, artifacts: Path) -> None:
    # Given a signed-in browser / When the default diff is opened
    page.goto(f"{dashboard.url}/diff?token={TOKEN}")
    # Then the newest scan is compared with the previous scan of its scope
    summary = page.inner_text("#diff-summary")
    assert "scan-a → scan-b" in summary
    assert "1 new, 0 regressed, 1 changed, 1 resolved" in summary
    assert NEW_CHECK in page.inner_text("#diff-new")
    assert S.DICOM_ANON in page.inner_text("#diff-resolved")
    assert S.DICOM_PHI in page.inner_text("#diff-changed")
    page.screenshot(path=str(artifacts / "dashboard-diff.png"), full_page=True)


def test_assets_page(page: Any, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/assets?token={TOKEN}")
    assert page.locator("tr.asset").count() == 2
    assert "4242/dicom" in page.inner_text("#assets")


def test_without_token_access_is_denied(page: Any, dashboard: Dashboard, artifacts: Path) -> None:
    # Given a fresh browser with no token / When any page is opened
    for path in ("/", "/findings", "/diff", "/api/findings"):
        response = page.goto(f"{dashboard.url}{path}")
        # Then it is denied and shows no data
        assert response.status == 401
        assert "scan-a" not in page.content()
    page.goto(f"{dashboard.url}/")
    assert page.inner_text("#denied") == "Access denied"
    page.screenshot(path=str(artifacts / "dashboard-denied.png"))


def test_html_report_is_self_contained(page: Any, tmp_path: Path, artifacts: Path) -> None:
    # Given the HTML report of the lab scan written to a file
    html = tmp_path / "report.html"
    html.write_text(render("html", ReportContext(report=S.lab_report())), encoding="utf-8")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # When Chromium opens it
    page.goto(html.as_uri())
    # Then the headline and charts render, nothing else was fetched, no script ran
    assert page.inner_text("#headline") == (
        "at least 120 distinct patients, 340 studies, 51,234 images exposed across 2 services"
    )
    assert page.locator("svg.chart g.bar").count() == 5
    assert page.locator("tr.finding").count() == 5
    assert S.HOSTILE_BANNER in page.inner_text("body")
    assert page.locator("body script, body img").count() == 0
    assert dialogs == []
    assert page.requests == [html.as_uri()]
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
