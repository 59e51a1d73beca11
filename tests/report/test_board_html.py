"""The board layout's HTML without a browser: Fix first, evidence without JSON, info rows, escaping."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import boardlab as B

from pacsradar.report import ReportContext, render
from pacsradar.report.html import keep_ids, not_dicom_services


def test_board_html_reads_as_sentences_with_fix_first_on_top() -> None:
    # Given the 56-finding board scan / When rendered as HTML
    out = render("html", ReportContext(report=B.board_report()))
    # Then Fix first comes right after the headline, before the per-asset tables
    assert out.index('id="headline"') < out.index('id="fix-first"') < out.index("Findings per asset")
    assert "Require authentication on 2 Orthanc servers" in out
    # And CVE lists are folded, sources not repeated, no raw JSON list anywhere
    assert "9 CVEs, fixed in 1.12.11, newest <span" in out
    assert '[""' not in out and "[&#34;" not in out and '", "' not in out
    # And the HTTP server on DICOM port 104 is an info row
    assert "Port 104 answers HTTP, not DICOM" in out
    # And the hostile peer string is escaped wherever it appears
    assert "<script>alert(1)</script>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_not_dicom_services_come_from_the_service_attempt() -> None:
    rows = not_dicom_services(B.board_report())
    assert [(host, r.port, r.answered_with) for host, r in rows] == [("127.0.0.2", 104, "http")]


def test_keep_ids_escapes_first_then_keeps_ids_whole() -> None:
    html = str(keep_ids('"><img src=x> CVE-2026-5445 on 192.0.2.1:4242 (DICOM-QUERY-PHI)'))
    assert html.startswith("&#34;&gt;&lt;img src=x&gt; ")
    assert '<span class="nowrap">CVE-2026-5445</span>' in html
    assert '<span class="nowrap">192.0.2.1:4242</span>' in html
    assert '<span class="nowrap">DICOM-QUERY-PHI</span>' in html
