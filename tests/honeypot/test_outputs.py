"""The suspected-honeypot mark reaches every output, and the headline leaves suspects out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pacsradar.dicom.honeypot.score import CHECK_ID, mark_suspects
from pacsradar.models import Endpoint, Finding, ScanReport, ScanStats, Severity, TargetResult
from pacsradar.report import ReportContext, render
from pacsradar.store import Store

T0 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def _finding(check_id: str, host: str, evidence: dict[str, object], severity: Severity) -> Finding:
    return Finding(
        check_id=check_id,
        title=check_id,
        severity=severity,
        endpoint=Endpoint(host=host, port=11112, protocol="dicom"),
        summary=f"{check_id} seen",
        evidence=evidence,  # type: ignore[arg-type]
        remediation="Restrict the port.",
    )


def lab_report() -> ScanReport:
    """127.0.0.8 is a suspected honeypot 'exposing' 10 patients; 127.0.0.9 is a real archive."""
    phi = {"patients": 10, "studies": 10, "images": 10}
    honeypot = mark_suspects(
        [
            _finding("DICOM-QUERY-PHI", "127.0.0.8", phi, Severity.CRITICAL),
            _finding(CHECK_ID, "127.0.0.8", {"score": 84, "suspected": True}, Severity.INFO),
        ]
    )
    real = (
        _finding(
            "DICOM-QUERY-PHI", "127.0.0.9", {"patients": 3, "studies": 4, "images": 5}, Severity.CRITICAL
        ),
    )
    results = tuple(
        TargetResult(endpoint=Endpoint(host=h, port=11112, protocol="dicom"), reachable=True, findings=f)
        for h, f in (("127.0.0.8", honeypot), ("127.0.0.9", real))
    )
    return ScanReport(
        scan_id="scan-hp",
        version="0.1.0",
        started_at=T0,
        finished_at=T0,
        scope=("127.0.0.8/31",),
        stats=ScanStats(endpoints_total=2, endpoints_done=2, endpoints_open=2),
        results=results,
    )


def test_sarif_and_defectdojo_carry_the_mark() -> None:
    # Given a scan with a suspected honeypot and a real archive
    ctx = ReportContext(report=lab_report(), generated_at=T0)
    # When rendered as SARIF and for DefectDojo
    sarif = json.loads(render("sarif", ctx))
    dojo = json.loads(render("defectdojo", ctx))
    # Then the suspect's results are marked and the real archive's are not
    marked = {
        r["properties"]["endpoint"]: r["properties"].get("suspectedHoneypot", False)
        for r in sarif["runs"][0]["results"]
    }
    assert marked == {"127.0.0.8:11112": True, "127.0.0.9:11112": False}
    tags = {tuple(f.get("tags", ())) for f in dojo["findings"] if "127.0.0.8" in f["endpoints"][0]}
    assert tags == {("suspected-honeypot",)}
    assert all("tags" not in f for f in dojo["findings"] if "127.0.0.9" in f["endpoints"][0])


def test_reports_headline_counts_the_real_archive_and_names_the_suspect() -> None:
    # Given the same scan / When rendered as Markdown
    ctx = ReportContext(report=lab_report(), generated_at=T0)
    text = render("md", ctx)
    # Then the headline has the real archive's counts, and the suspect counted apart
    headline = "3 distinct patients, 4 studies, 5 images exposed across 1 service"
    assert f"{headline}; 1 service looks like honeypots" in text


def test_the_store_keeps_the_mark_and_scans_leave_suspects_out(tmp_path: Path) -> None:
    # Given the scan saved in a store
    with Store(f"sqlite:///{tmp_path / 'hp.db'}") as store:
        store.save_report(lab_report())
        # When the scans are listed (the `scans` command and the dashboard read this)
        (summary,) = store.list_scans()
    # Then the stored findings still carry the mark, and the exposure is the real archive's
    assert (summary.exposure.patients, summary.exposure.services, summary.exposure.honeypots) == (3, 1, 1)
