"""Sample ScanReports for the store, report and dashboard tests.

Evidence is PHI-free by construction (counts, keywords, keyed hashes). Peer strings (AE titles,
banners, product names) are hostile markup and spreadsheet formulas, and a canary patient name
is only ever present as a keyed hash: tests assert its bytes never reach any output.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    Finding,
    Reference,
    ScanReport,
    ScanStats,
    Severity,
    TargetResult,
)
from pacsradar.phi import KeyedHasher, peer_text

HOSTILE_AE = peer_text('"><img src=x onerror=alert(1)>')
HOSTILE_BANNER = peer_text("<script>alert('pacs')</script>")
HOSTILE_FORMULA = peer_text('=HYPERLINK("http://evil.invalid","x")')
HOSTILE_MD = peer_text("[click](javascript:alert(1)) | **bold** `code`")
HOSTILE_STRINGS = (HOSTILE_AE, HOSTILE_BANNER, HOSTILE_FORMULA, HOSTILE_MD)
#: Markup that must never appear verbatim in any rendered output.
MARKUP_MARKERS = ("<script>", "<img src=x", "onerror=alert(1)>")

#: A synthetic patient name standing for PHI the scanner handled in memory: only its keyed hash
#: may be stored. Generated once per test run, never a real person.
CANARY_NAME = "ZZCANARY^QUILLON^XYZZY"
CANARY_ID = "CANARY-77341-PID"
HASHER = KeyedHasher(b"k" * 32)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

DICOM_PHI = "DICOM-QUERY-PHI"
DICOM_ANON = "DICOM-ANY-AE"
WEB_PHI = "WEB-UNAUTH-PHI"
TLS = "DICOM-PLAINTEXT"


def finding(
    check_id: str,
    host: str,
    port: int,
    *,
    severity: Severity = Severity.HIGH,
    protocol: str = "dicom",
    evidence: dict[str, object] | None = None,
    product: str | None = None,
    summary: str | None = None,
) -> Finding:
    return Finding(
        check_id=check_id,
        title=f"{check_id.replace('-', ' ').title()}",
        severity=severity,
        endpoint=Endpoint(host=host, port=port, protocol=protocol),  # type: ignore[arg-type]
        summary=summary if summary is not None else f"{check_id} observed",
        evidence=dict(evidence or {}),  # type: ignore[arg-type]
        remediation=f"Fix {check_id} on this service. Restrict access (PS3.15 Annex B).",
        references=(
            Reference(title="DICOM PS3.15", url="https://dicom.nema.org/medical/dicom/current/"),
            Reference(title="hostile ref", url="javascript:alert(1)"),
        ),
        cwe="CWE-306",
        product=product,
    )


def phi_evidence(patients: int, studies: int, images: int) -> dict[str, object]:
    return {
        "patients": patients,
        "studies": studies,
        "images": images,
        "keywords": ["PatientName", "PatientID", "StudyDate"],
        "study_years": [2019, 2024],
        "patient_hashes": [HASHER.digest(CANARY_NAME), HASHER.digest(CANARY_ID)],
        "calling_ae_echoed": HOSTILE_AE,
    }


def result(
    host: str,
    port: int,
    findings: list[Finding],
    *,
    protocol: str = "dicom",
    reachable: bool = True,
    errored: bool = False,
    product: str | None = HOSTILE_BANNER,
    started: datetime = T0,
) -> TargetResult:
    attempts = [
        Attempt(
            check="dicom.echo",
            status=AttemptStatus.COMPLETED,
            duration_ms=3.5,
            details={"ae_title": HOSTILE_AE, "accepted": True},
        ),
        Attempt(
            check="dicom.query",
            status=AttemptStatus.ERROR if errored else AttemptStatus.COMPLETED,
            reason="ReadTimeout: no answer in 5s" if errored else None,
            duration_ms=12.25,
            details={"records": 3},
        ),
    ]
    return TargetResult(
        endpoint=Endpoint(host=host, port=port, protocol=protocol),  # type: ignore[arg-type]
        reachable=reachable,
        service="dicom" if reachable else None,
        product=product if reachable else None,
        attempts=tuple(attempts) if reachable else (),
        findings=tuple(findings),
        error=None if reachable else "connect failed (Connection refused)",
        started_at=started,
        duration_ms=40.0,
    )


def report(
    scan_id: str,
    results: list[TargetResult],
    *,
    started: datetime = T0,
    scope: tuple[str, ...] = ("127.0.0.1/30",),
    interrupted: bool = False,
) -> ScanReport:
    reachable = [r for r in results if r.reachable]
    return ScanReport(
        scan_id=scan_id,
        version="0.1.0",
        started_at=started,
        finished_at=started + timedelta(minutes=3),
        scope=scope,
        options={"max_records": 100, "intrusive": False, "only": ["dicom", "web"]},
        stats=ScanStats(
            endpoints_total=len(results),
            endpoints_done=len(results),
            endpoints_open=len(reachable),
            endpoints_closed=len(results) - len(reachable),
            endpoints_error=sum(
                1 for r in results if any(a.status is AttemptStatus.ERROR for a in r.attempts)
            ),
            interrupted=interrupted,
        ),
        results=tuple(sorted(reachable, key=lambda r: (r.endpoint.host, r.endpoint.port))),
    )


def lab_report(scan_id: str = "scan-a", started: datetime = T0) -> ScanReport:
    """Two hosts: an Orthanc-like PACS leaking PHI over DICOM and web, and a quiet modality."""
    return report(
        scan_id,
        [
            result(
                "127.0.0.1",
                4242,
                [
                    finding(
                        DICOM_PHI,
                        "127.0.0.1",
                        4242,
                        severity=Severity.CRITICAL,
                        evidence=phi_evidence(120, 340, 51234),
                        product=HOSTILE_BANNER,
                        summary=f"C-FIND answered for AE {HOSTILE_AE}",
                    ),
                    finding(
                        DICOM_ANON,
                        "127.0.0.1",
                        4242,
                        severity=Severity.HIGH,
                        evidence={"called_ae": HOSTILE_AE},
                        product=HOSTILE_FORMULA,
                    ),
                    finding(
                        TLS, "127.0.0.1", 4242, severity=Severity.MEDIUM, evidence={}, summary=HOSTILE_MD
                    ),
                ],
                started=started,
            ),
            result(
                "127.0.0.1",
                8042,
                [
                    finding(
                        WEB_PHI,
                        "127.0.0.1",
                        8042,
                        severity=Severity.CRITICAL,
                        protocol="http",
                        evidence=phi_evidence(118, 330, 50000),
                    ),
                ],
                protocol="http",
                started=started,
            ),
            result(
                "127.0.0.2",
                104,
                [
                    finding(
                        TLS,
                        "127.0.0.2",
                        104,
                        severity=Severity.LOW,
                        evidence={"studies": 5, "patients": True},
                    ),
                ],
                product=HOSTILE_FORMULA,
                started=started,
            ),
            result("127.0.0.3", 104, [], reachable=False, started=started),
        ],
        started=started,
    )
