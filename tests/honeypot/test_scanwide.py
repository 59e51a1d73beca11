"""Unit tests of the scan-level honeypot tells (pacsradar.dicom.honeypot.scanwide) on hand-built
results: archives shared across hosts, and the web side of the same host."""

from __future__ import annotations

import pytest

from pacsradar.dicom.honeypot.scanwide import CROSS_TELLS, SERVICE_SCORE, cross_service
from pacsradar.dicom.honeypot.score import CHECK_ID, DEFAULT_THRESHOLD
from pacsradar.models import Attempt, AttemptStatus, Endpoint, EvidenceValue, Finding, Severity, TargetResult
from pacsradar.report.exposure import exposure_of

DCMTK_UID, PYNETDICOM_UID = "1.2.276.0.7230010.3.0.3.6.7", "1.2.826.0.1.3680043.9.3811.3.0.4"
OWN_TELLS = [
    "identity-on-pynetdicom-upper-layer (+45): identity of GE Healthcare (vendor root), ...",
    "archive-pydicom-uids-vendor-claim (+35): 5 of 5 study UIDs under pydicom's generate_uid root",
]


def exposure(host: str, port: int) -> Finding:
    return Finding(
        check_id="DICOM-QR-UNAUTH-PHI",
        title="patients",
        severity=Severity.HIGH,
        endpoint=Endpoint(host=host, port=port, protocol="dicom"),
        evidence={"patients": 5},
    )


def dicom(
    host: str,
    port: int = 11112,
    *,
    pset: str | None = "p1",
    ac: str = "ac1",
    tells: list[str] | None = None,
    uncounted: list[str] | None = None,
    uid: str = PYNETDICOM_UID,
    version: str = "PYNETDICOM_304",
    product: str | None = "pynetdicom",
) -> TargetResult:
    """A DICOM result as the auditor leaves it: its own honeypot score, a finding only with tells."""
    own = tells or []
    from pacsradar.dicom.honeypot.score import combine, load_table

    weights = {t.id: t.weight for t in load_table().tells}
    score = combine(weights[line.split(" (+")[0]] for line in own)
    details: dict[str, EvidenceValue] = {
        "score": score, "threshold": DEFAULT_THRESHOLD, "suspected": score >= DEFAULT_THRESHOLD,
        "tells": own, "ac_digest": ac,
    }  # fmt: skip
    if pset:
        details["patient_set_digest"] = pset
    if uncounted:
        details["uncounted_tells"] = uncounted
    ep = Endpoint(host=host, port=port, protocol="dicom")
    findings = [exposure(host, port)]
    if own:
        honeypot = Finding(
            check_id=CHECK_ID, title="hp", severity=Severity.INFO, endpoint=ep, evidence=details
        )
        findings.append(honeypot)
    if score >= DEFAULT_THRESHOLD:
        findings = [
            f.model_copy(update={"evidence": {**f.evidence, "suspected_honeypot": True}}) for f in findings
        ]
    service: dict[str, EvidenceValue] = {
        "implementation_class_uid": uid,
        "implementation_version_name": version,
    }
    attempts = (
        Attempt(check="dicom.service", status=AttemptStatus.COMPLETED, details=service),
        Attempt(check="dicom.honeypot", status=AttemptStatus.COMPLETED, details=details),
    )
    return TargetResult(
        endpoint=ep,
        reachable=True,
        service="dicom",
        product=product,
        attempts=attempts,
        findings=tuple(findings),
    )


def web(
    host: str, port: int, *, product: str | None = None, status: int = 404, digest: str = "d404"
) -> TargetResult:
    details: dict[str, EvidenceValue] = {
        "product": product, "login_form": False, "root_status": status, "root_digest": digest,
    }  # fmt: skip
    attempt = Attempt(check="web.fingerprint", status=AttemptStatus.COMPLETED, details=details)
    ep = Endpoint(host=host, port=port, protocol="http")
    return TargetResult(endpoint=ep, reachable=True, service="http", attempts=(attempt,))


def by_host(results: list[TargetResult]) -> dict[str, TargetResult]:
    return {f"{r.endpoint.host}:{r.endpoint.port}": r for r in results}


def honeypot(result: TargetResult) -> dict[str, EvidenceValue]:
    return dict(next(a.details for a in result.attempts if a.check == "dicom.honeypot"))


def suspected(result: TargetResult) -> bool:
    return bool(result.findings) and all(f.suspected_honeypot for f in result.findings)


def test_a_service_sharing_a_suspects_fake_archive_is_suspected() -> None:
    # Given a honeypot suspected on its own tells, and a quiet service on another host with the
    # same patient set (but another identity: a second persona of the same sensor)
    hp = dicom("192.0.2.1", tells=OWN_TELLS)
    quiet = dicom("192.0.2.2", ac="ac2")
    # When the scan-level pass runs
    out = by_host(cross_service([hp, quiet], threshold=DEFAULT_THRESHOLD))
    # Then the quiet one scores from the shared archive alone, is suspected, and gained a finding
    d = honeypot(out["192.0.2.2:11112"])
    assert d[SERVICE_SCORE] == 0 and d["score"] == 60 and d["suspected"] is True
    assert [str(t).split(" (+")[0] for t in d[CROSS_TELLS]] == ["archive-shared-with-suspect"]  # type: ignore[union-attr]
    assert suspected(out["192.0.2.2:11112"])
    assert any(f.check_id == CHECK_ID for f in out["192.0.2.2:11112"].findings)
    # And the headline leaves both out
    findings = [f for r in out.values() for f in r.findings]
    assert exposure_of(findings).honeypots == 2 and exposure_of(findings).patients == 0


def test_identical_configurations_with_different_archives_are_not_a_tell() -> None:
    # Given a hospital's fleet: byte-identical ACs on three hosts, each its own patients
    fleet = [dicom(f"192.0.2.{i}", pset=f"p{i}") for i in range(1, 4)]
    # Then nothing changes
    out = cross_service(fleet, threshold=DEFAULT_THRESHOLD)
    assert out == fleet


def test_an_identical_archive_on_two_hosts_alone_shows_but_does_not_mark() -> None:
    # Given byte-identical ACs and the same patient set on two hosts, nothing else (a replicated
    # primary/standby pair looks like this too)
    pair = [dicom("192.0.2.1"), dicom("192.0.2.2")]
    out = cross_service(pair, threshold=DEFAULT_THRESHOLD)
    for r in out:
        d = honeypot(r)
        # Then the tell is listed and scored, below the threshold: nothing is marked
        assert d["score"] == 35 and d["suspected"] is False
        assert not any(f.suspected_honeypot for f in r.findings)
    # And two ports of one host serving one archive (DICOM and DICOM-TLS of one server) are no fleet
    same_host = [dicom("192.0.2.1", 104), dicom("192.0.2.1", 2762)]
    assert cross_service(same_host, threshold=DEFAULT_THRESHOLD) == same_host


def test_a_fleet_archive_with_one_more_tell_is_marked() -> None:
    # Given the identical archive on two hosts, and a weak own tell (20) on each
    weak = ["modality-persona-archive (+20): a CT scanner's version name; C-FIND answered 5 record(s)"]
    out = cross_service(
        [dicom("192.0.2.1", tells=weak), dicom("192.0.2.2", tells=weak)], threshold=DEFAULT_THRESHOLD
    )
    # Then 1 - 0.8 * 0.65 = 48 ... below; with the default 404 web side it is above
    assert all(honeypot(r)["score"] == 48 for r in out)
    hosts = [
        dicom("192.0.2.1", tells=weak),
        web("192.0.2.1", 8080),
        web("192.0.2.1", 8443),
        dicom("192.0.2.2", tells=weak),
    ]
    out = by_host(cross_service(hosts, threshold=DEFAULT_THRESHOLD))
    assert honeypot(out["192.0.2.1:11112"])["score"] == 58 and suspected(out["192.0.2.1:11112"])
    assert not suspected(out["192.0.2.2:11112"])


def test_a_claimed_orthanc_whose_8042_is_not_orthanc() -> None:
    # Given a service naming Orthanc in its version name on pynetdicom's root, and the host's 8042
    # answering a generic 404
    claim = dicom("192.0.2.1", version="ORTHANC", pset=None)
    out = by_host(cross_service([claim, web("192.0.2.1", 8042)], threshold=DEFAULT_THRESHOLD))
    d = honeypot(out["192.0.2.1:11112"])
    # Then the web tell is seen (weight 30, below the threshold alone)
    assert [str(t).split(" (+")[0] for t in d[CROSS_TELLS]] == ["web-claimed-product-absent"]  # type: ignore[union-attr]
    assert d["score"] == 30
    # But a real Orthanc (DCMTK's UID, refined to Orthanc) whose 8042 answers as Orthanc shows nothing
    real = dicom("192.0.2.3", uid=DCMTK_UID, version="OFFIS_DCMTK_367", product="Orthanc", pset=None)
    site = [real, web("192.0.2.3", 8042, product="Orthanc", status=404, digest="orthanc-json")]
    assert cross_service(site, threshold=DEFAULT_THRESHOLD) == site


def test_a_default_404_web_side_alone_is_supporting_only() -> None:
    # Given a real archive on a Windows host whose WinRM ports answer HTTP.sys's one 404 page
    site = [dicom("192.0.2.1", pset="own"), web("192.0.2.1", 5985), web("192.0.2.1", 47001)]
    out = by_host(cross_service(site, threshold=DEFAULT_THRESHOLD))
    d = honeypot(out["192.0.2.1:11112"])
    # Then the tell is listed, scored 0 (supporting only), nothing marked, no finding added
    assert d["score"] == 0 and d["suspected"] is False and d[CROSS_TELLS]
    assert not any(f.check_id == CHECK_ID for f in out["192.0.2.1:11112"].findings)
    # And different pages, or a product, are no default 404 fleet
    mixed = [
        dicom("192.0.2.1", pset="own"),
        web("192.0.2.1", 80, digest="a"),
        web("192.0.2.1", 8080, digest="b"),
    ]
    assert cross_service(mixed, threshold=DEFAULT_THRESHOLD) == mixed


def test_supporting_own_tells_count_once_a_scan_tell_arrives() -> None:
    # Given a service whose only own tell is supporting (uncounted), sharing a suspect's archive
    rnd = ["random-syntax-accepted (+30): presentation context for a fresh random 2.25 abstract syntax"]
    out = by_host(
        cross_service(
            [dicom("192.0.2.1", tells=OWN_TELLS), dicom("192.0.2.2", ac="x", uncounted=rnd)],
            threshold=DEFAULT_THRESHOLD,
        )
    )
    d = honeypot(out["192.0.2.2:11112"])
    # Then both count: 1 - 0.4 * 0.7 = 72
    assert d["score"] == 72 and "uncounted_tells" not in d and d["tells"] == rnd


def test_the_pass_is_idempotent_and_honours_count_honeypots() -> None:
    # Given a scan re-scored once
    scan = [dicom("192.0.2.1", tells=OWN_TELLS), dicom("192.0.2.2", ac="ac2"), web("192.0.2.1", 8042)]
    once = cross_service(scan, threshold=DEFAULT_THRESHOLD)
    # When it is read back and re-scored again (a stored scan)
    assert cross_service(once, threshold=DEFAULT_THRESHOLD) == once
    # And with --count-honeypots the score is kept, nothing is marked
    kept = by_host(cross_service(scan, threshold=DEFAULT_THRESHOLD, count_honeypots=True))
    assert honeypot(kept["192.0.2.2:11112"])["suspected"] is True
    assert not any(f.suspected_honeypot for f in kept["192.0.2.2:11112"].findings)


def test_a_bug_in_the_scan_level_pass_never_costs_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from pacsradar.config import ScanOptions
    from pacsradar.dicom.honeypot import scanwide
    from pacsradar.outcome import scan_report

    # Given a scan-level pass that raises on whatever it is given
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("peer said <script>")

    monkeypatch.setattr(scanwide, "cross_service", broken)
    counts = {"done": 1, "open": 1, "closed": 0, "filtered": 0, "error": 0}
    result = TargetResult(endpoint=Endpoint(host="127.0.0.1", port=104), reachable=True)
    # When the finished scan's report is built
    report = scan_report(
        "s1", ScanOptions(), datetime.now(UTC), ("127.0.0.1",), counts, 1, False, [result]
    )
    # Then the report stands with the per-service results, and the scan is not lost
    assert list(report.results) == [result]
