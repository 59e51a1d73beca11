"""Fleets (issue 22 part 5): services whose fingerprints are identical, from the facts the
probes recorded, never from traffic of their own. Hand-built results: a unit of the grouping."""

from __future__ import annotations

from pacsradar.models import Attempt, AttemptStatus, Endpoint, Evidence, Finding, Severity, TargetResult
from pacsradar.report.fleets import fleets_of

PYNETDICOM: Evidence = {
    "dicom": True,
    "tls": False,
    "association": "accepted",
    "implementation_class_uid": "1.2.826.0.1.3680043.9.3811.3.0.4",
    "implementation_version_name": "PYNETDICOM_304",
    "max_pdu": 16382,
    "product": "pynetdicom 3.0.4",
    "accepted_contexts": ["StudyRoot-FIND", "Verification"],
}


def dicom(
    host: str, port: int, service: Evidence, *, honeypot: bool = False, product: str | None = None
) -> TargetResult:
    findings: tuple[Finding, ...] = ()
    if honeypot:
        findings = (
            Finding(
                check_id="DICOM-HONEYPOT-SUSPECT",
                title="looks like a honeypot",
                severity=Severity.INFO,
                endpoint=Endpoint(host=host, port=port, protocol="dicom"),
                evidence={"suspected_honeypot": True},
            ),
        )
    return TargetResult(
        endpoint=Endpoint(host=host, port=port, protocol="dicom"),
        reachable=True,
        service="dicom",
        product=product or str(service.get("product") or "") or None,
        attempts=(
            Attempt(check="dicom.service", status=AttemptStatus.COMPLETED, details=service),
            Attempt(
                check="dicom.any_ae",
                status=AttemptStatus.COMPLETED,
                details={"accepts_random_called_aet": True, "accepts_random_calling_aet": True},
            ),
        ),
        findings=findings,
    )


def web(host: str, port: int, server: str) -> TargetResult:
    return TargetResult(
        endpoint=Endpoint(host=host, port=port, protocol="http"),
        reachable=True,
        service="http",
        product="Orthanc",
        attempts=(
            Attempt(
                check="web.fingerprint",
                status=AttemptStatus.COMPLETED,
                details={"scheme": "http", "product": "Orthanc", "version": "1.10.1", "server": server,
                         "components": [], "auth_required": False, "login_form": False, "probes": 3},
            ),
        ),
    )  # fmt: skip


def test_identical_fingerprints_group_and_any_difference_splits() -> None:
    # Given twelve identical pynetdicom services on three hosts, one with a larger maximum PDU,
    # one that looks like a honeypot, and two Orthanc web servers with the same Server header
    results = [dicom(f"127.0.0.{1 + i % 3}", 11112 + i, PYNETDICOM, honeypot=i == 5) for i in range(12)]
    results.append(dicom("127.0.0.9", 104, {**PYNETDICOM, "max_pdu": 65536}))
    results += [web("127.0.0.1", 8042, "ORTHANC"), web("127.0.0.2", 8042, "ORTHANC")]
    results.append(TargetResult(endpoint=Endpoint(host="127.0.0.7", port=104), reachable=False))
    # When the fleets are computed
    fleets = fleets_of(results)
    # Then the twelve are one fleet, the odd PDU is not in it, the web pair is another
    assert fleets.fingerprinted == 15 and fleets.in_fleets == 14
    big, pair = fleets.fleets
    assert (big.size, big.family, big.hosts, big.honeypots, big.product) == (
        12,
        "dicom",
        3,
        1,
        "pynetdicom 3.0.4",
    )
    assert big.fingerprint["max_pdu"] == 16382 and "127.0.0.9:104" not in big.services
    assert (pair.size, pair.family, pair.hosts) == (2, "web", 2)
    assert "probes" not in pair.fingerprint  # what varies with the run is not configuration
    # And the sentence says it, with the honeypot tell
    assert fleets.sentence.startswith(
        "Fleets: 12 services share one configuration (pynetdicom 3.0.4), 1 of them suspected honeypots; "
        "2 services share another (Orthanc)"
    )
    assert "14 of 15 fingerprinted services (93%) are in fleets" in fleets.sentence


def test_the_key_is_stable_and_rejections_group_only_when_the_product_is_known() -> None:
    # Given two scans of the same pair, and two rejecting services, one of them with a product
    first = fleets_of([dicom("127.0.0.1", 1, PYNETDICOM), dicom("127.0.0.2", 1, PYNETDICOM)])
    second = fleets_of([dicom("127.0.0.3", 2, PYNETDICOM), dicom("127.0.0.4", 2, PYNETDICOM)])
    assert first.fleets[0].key == second.fleets[0].key
    rejected: Evidence = {"dicom": True, "tls": False, "association": "rejected"}
    rejected.update(rj_result=1, rj_source=1, rj_reason=7)
    unknown = fleets_of([dicom("127.0.0.1", 1, rejected), dicom("127.0.0.2", 1, rejected)])
    # Then rejections alone are no fleet (A-ASSOCIATE-RJ names no implementation)
    assert unknown.fingerprinted == 0 and not unknown.fleets and unknown.sentence == ""
    named = fleets_of([dicom(h, 1, rejected, product="DCMTK 3.6.7") for h in ("127.0.0.1", "127.0.0.2")])
    assert named.fleets[0].size == 2 and named.fleets[0].fingerprint["rj_reason"] == 7


def test_hostile_peer_text_is_bounded_and_de_controlled() -> None:
    # Given identical services whose version name carries a terminal escape and is very long
    hostile = {**PYNETDICOM, "implementation_version_name": "\x1b[31m" + "A" * 5000}
    fleets = fleets_of([dicom("127.0.0.1", 1, hostile), dicom("127.0.0.2", 1, hostile)])
    name = fleets.fleets[0].fingerprint["implementation_version_name"]
    assert isinstance(name, str) and "\x1b" not in name and len(name) <= 200


def test_reports_show_the_fleet_line_and_the_patient_link_line() -> None:
    from datetime import UTC, datetime

    from pacsradar.identity import patient_record
    from pacsradar.models import Holdings, ScanReport
    from pacsradar.phi import KeyedHasher
    from pacsradar.report.context import ReportContext
    from pacsradar.report.dispatch import render

    # Given two identical services exposing the same patient, one without the issuer
    hasher = KeyedHasher(b"f" * 32)
    results = []
    for port, issuer in ((104, "A"), (105, None)):
        record = patient_record(hasher, "P1", issuer)
        assert record is not None
        base = dicom("127.0.0.1", port, PYNETDICOM)
        phi = Finding(
            check_id="DICOM-QUERY-PHI",
            title="C-FIND returns patient data",
            severity=Severity.CRITICAL,
            endpoint=base.endpoint,
            evidence={"patients": 1, "studies": 0, "images": 0},
            holdings=Holdings(patient_records=(record,), source="archive"),
        )
        results.append(base.model_copy(update={"findings": (phi,)}))
    report = ScanReport(scan_id="fleet", version="0", started_at=datetime.now(UTC), results=tuple(results))
    ctx = ReportContext(report=report)
    # When rendered as Markdown and HTML / Then both say how patients were linked and the fleet
    for fmt in ("md", "html"):
        text = render(fmt, ctx)
        assert isinstance(text, str)
        assert "1 distinct patient" in text
        assert "Patient identity: 1 linked by PatientID where a service left the issuer out" in text
        assert "Fleets: 2 services share one configuration" in text and "pynetdicom 3.0.4" in text
