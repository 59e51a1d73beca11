"""The terminal and piped renderings of a report: nothing cut, at 80 and 200 columns and piped."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    Finding,
    ScanReport,
    ScanStats,
    Severity,
    TargetResult,
)
from pacsradar.outcome import could_not_test, port_state
from pacsradar.render import plain_lines, print_report

SUMMARY = "Association accepted for random called and calling AE titles: no peer authorisation at all"


def _report() -> ScanReport:
    ep = Endpoint(host="192.0.2.10", port=11112, protocol="dicom")
    finding = Finding(
        check_id="DICOM-ANY-AE",
        title="Any AE",
        severity=Severity.HIGH,
        endpoint=ep,
        summary=SUMMARY,
        product="Orthanc",
    )
    silent = TargetResult(
        endpoint=Endpoint(host="192.0.2.11", port=104),
        reachable=True,
        attempts=(Attempt(check="dicom.service", status=AttemptStatus.ERROR, reason="no answer within 2s"),),
    )
    return ScanReport(
        scan_id="20261204T120000Z-abcdef",
        version="0",
        started_at=datetime.now(UTC),
        stats=ScanStats(
            endpoints_total=3, endpoints_done=3, endpoints_open=2, endpoints_closed=1, endpoints_error=1
        ),
        results=(TargetResult(endpoint=ep, reachable=True, findings=(finding,)), silent),
    )


@pytest.mark.parametrize("width", [80, 200])
def test_terminal_output_keeps_ids_and_summaries_whole(width: int) -> None:
    # Given a report, When printed on a terminal of 80 or 200 columns
    buf = io.StringIO()
    print_report(_report(), Console(file=buf, width=width, force_terminal=True, color_system=None))
    text = " ".join(buf.getvalue().split())  # undo rich's line wrapping, keep the words
    # Then the scan id, the check id, the endpoint and every word of the summary are intact
    assert "20261204T120000Z-abcdef" in text
    assert "DICOM-ANY-AE" in text and "192.0.2.10:11112" in text
    assert SUMMARY in text
    # And what could not be tested is listed, and the counts use nmap's states
    assert "192.0.2.11:104" in text and "no answer within 2s" in text
    assert "3 endpoints probed: 2 open, 1 closed, 0 filtered; 1 could not be tested; 1 finding" in text


def test_piped_output_is_one_finding_per_line() -> None:
    # Given a report and an accepted risk, When printed off a terminal
    report = _report()
    key = report.findings[0].dedupe_key
    buf = io.StringIO()
    print_report(report, Console(file=buf, width=80, force_terminal=False), accepted={key: "2027-01-01"})
    lines = buf.getvalue().splitlines()
    # Then every field is whole, tab-separated, one line per finding and per untested endpoint
    assert lines[0] == "# pacsradar scan 20261204T120000Z-abcdef"
    assert lines[1].split("\t") == [
        "finding",
        "192.0.2.10:11112",
        "high",
        "DICOM-ANY-AE",
        "Orthanc",
        SUMMARY,
        "accepted risk until 2027-01-01",
    ]
    assert lines[2].split("\t")[:2] == ["could-not-test", "192.0.2.11:104"]
    assert lines == list(plain_lines(report, {key: "2027-01-01"}))


def test_port_states_follow_nmap() -> None:
    ep = Endpoint(host="192.0.2.1", port=104)
    assert port_state(TargetResult(endpoint=ep, reachable=True)) == "open"
    assert (
        port_state(TargetResult(endpoint=ep, reachable=False, error="connect failed (Connection refused)"))
        == "closed"
    )
    assert (
        port_state(TargetResult(endpoint=ep, reachable=False, error="connect did not complete within 3s"))
        == "filtered"
    )
    assert (
        port_state(TargetResult(endpoint=ep, reachable=False, error="connect failed (No route to host)"))
        == "filtered"
    )
    # And a closed port is never "could not test"; an open one with a failed attempt is
    assert could_not_test([TargetResult(endpoint=ep, reachable=False, error="connect failed")]) == []
