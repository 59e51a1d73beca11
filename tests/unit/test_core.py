"""Units for the findings model, PHI helpers, registry, fingerprints and rendering."""

from __future__ import annotations

import asyncio
import io
import json

from rich.console import Console

from pacsradar.dicom.fingerprint import identify
from pacsradar.models import Endpoint, Finding, ScanReport, Severity, TargetResult
from pacsradar.net import HostLimiter
from pacsradar.phi import KeyedHasher, peer_text
from pacsradar.registry import all_specs, dicom_checks
from pacsradar.render import iter_jsonl, print_report

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>[bold red]x[/]\x1b[31m'


def test_every_check_id_is_unique_and_documented() -> None:
    # Given the registry, Then each spec has an id, remediation and at least one reference
    specs = all_specs()
    assert "DICOM-ANY-AE" in specs and "DICOM-QUERY-PHI" in specs
    for spec in specs.values():
        assert spec.id.isupper() and spec.remediation and spec.references
    assert next(c.name for c in dicom_checks()) == "dicom.service"


def test_keyed_hashes_depend_on_the_key() -> None:
    # Given two scans with random keys and one linked pair with the same passphrase
    a, b = KeyedHasher(), KeyedHasher()
    l1, l2 = KeyedHasher.from_passphrase("k"), KeyedHasher.from_passphrase("k")
    # Then random keys do not link, passphrase keys do, and the key never shows in repr
    assert a.digest("PID123") != b.digest("PID123")
    assert l1.digest("PID123") == l2.digest("PID123")
    assert "PID123" not in l1.digest("PID123") and "hidden" in repr(a)


def test_peer_text_strips_control_characters_and_bounds_length() -> None:
    # Given a hostile banner with a terminal escape and a huge tail
    text = peer_text("ABC\x1b[2J" + "x" * 10_000)
    # Then no control character survives and the length is bounded
    assert "\x1b" not in text and len(text) <= 128


def test_fingerprint_says_dcmtk_based_for_orthanc_and_dcmtk() -> None:
    # Given the UID that both DCMTK and Orthanc 1.10.1 send
    fp = identify("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")
    # Then we do not claim more than the evidence shows
    assert fp.product.startswith("DCMTK-based") and fp.version == "3.6.7"
    assert identify("9.9.9", None).confidence == "none"


def test_dedupe_key_is_stable_and_ignores_evidence() -> None:
    ep = Endpoint(host="192.0.2.10", port=104, protocol="dicom")
    f1 = Finding(check_id="DICOM-ANY-AE", title="t", severity=Severity.HIGH, endpoint=ep, evidence={"a": 1})
    f2 = f1.model_copy(update={"evidence": {"a": 2}})
    assert f1.dedupe_key == f2.dedupe_key


def _hostile_report() -> ScanReport:
    ep = Endpoint(host="192.0.2.10", port=104, protocol="dicom")
    finding = Finding(
        check_id="DICOM-SERVICE-EXPOSED",
        title="DICOM service reachable",
        severity=Severity.INFO,
        endpoint=ep,
        summary=HOSTILE,
        product=HOSTILE,
    )
    from datetime import UTC, datetime

    return ScanReport(
        scan_id="s1",
        version="0",
        started_at=datetime.now(UTC),
        results=(TargetResult(endpoint=ep, reachable=True, findings=(finding,), error=HOSTILE),),
    )


def test_table_rendering_does_not_interpret_peer_markup() -> None:
    # Given a finding whose product banner contains rich markup and an ANSI escape
    buf = io.StringIO()
    console = Console(file=buf, width=300, color_system=None)
    # When the table is printed
    print_report(_hostile_report(), console)
    out = buf.getvalue()
    # Then the markup shows literally (not as styling) and no raw escape reaches the terminal
    assert "[bold red]x[/]" in out
    assert "\x1b" not in out


def test_jsonl_is_valid_json_per_line() -> None:
    lines = list(iter_jsonl(_hostile_report()))
    assert all(json.loads(line) for line in lines)
    assert json.loads(lines[-1])["type"] == "summary"


async def test_host_limiter_caps_concurrency_and_forgets_idle_hosts() -> None:
    # Given a per-host limit of 2 and 6 concurrent users of one host
    limiter = HostLimiter(2)
    active = peak = 0

    async def user() -> None:
        nonlocal active, peak
        async with limiter.slot("127.0.0.1"):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(user() for _ in range(6)))
    # Then no more than 2 ran at once, and nothing is kept for the idle host
    assert peak == 2
    assert limiter._hosts == {}
