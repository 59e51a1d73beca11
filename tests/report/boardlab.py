"""A board-sized scan: 56 findings on 8 services of the kinds the lab runs, for layout tests.

Built from the real check specs (titles, product-aware remediation, references) and the real
CVE table, with evidence shaped as each check writes it. Two Orthanc servers expose the same
20 synthetic patients (keyed hashes only), dcmqrscp 8 of them; an HTTP server answers on the
DICOM port 104 (no finding, an info row). Peer strings are hostile markup.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    EvidenceValue,
    Finding,
    Holdings,
    ScanReport,
    ScanStats,
    Severity,
    TargetResult,
)
from pacsradar.phi import KeyedHasher, peer_text
from pacsradar.registry import all_specs
from pacsradar.vulns import cve_evidence, matching

HOSTILE = peer_text('"><script>alert(1)</script>')
HASHER = KeyedHasher(b"b" * 32)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PATIENTS = tuple(HASHER.digest(f"PID-{i:03d}") for i in range(20))
STUDIES = tuple(HASHER.digest(f"STUDY-{i:03d}") for i in range(40))
ORTHANC = "Orthanc 1.12.3"
DCMTK = "DCMTK 3.6.7 (OFFIS)"


def _f(
    check: str,
    host: str,
    port: int,
    protocol: str,
    *,
    product: str | None,
    evidence: dict[str, EvidenceValue] | None = None,
    summary: str | None = None,
    severity: Severity | None = None,
    holdings: Holdings | None = None,
) -> Finding:
    spec = all_specs()[check]
    return spec.finding(
        Endpoint(host=host, port=port, protocol=protocol),  # type: ignore[arg-type]
        summary=summary or f"{spec.title} on {host}:{port}",
        evidence=evidence,
        product=product,
        severity=severity,
        holdings=holdings,
    )


def _cve_evidence(product: str, version: str) -> tuple[dict[str, EvidenceValue], Severity]:
    hits = matching(product, version)
    worst = max((Severity(e.severity) for e in hits), key=lambda s: s.rank)
    return cve_evidence(product, version, hits), worst


def _phi(patients: int, studies: int, images: int) -> dict[str, EvidenceValue]:
    return {
        "patients": patients,
        "studies": studies,
        "images": images,
        "keywords": ["PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AccessionNumber"],
        "study_years": [2014, 2026],
        "calling_ae_echoed": HOSTILE,
    }


def _holdings(n_patients: int, n_studies: int) -> Holdings:
    return Holdings(
        patients=PATIENTS[:n_patients], studies=STUDIES[:n_studies], study_images=(12,) * n_studies
    )


def _orthanc(host: str) -> list[Finding]:
    d, w = (host, 4242, "dicom"), (host, 8042, "http")
    cve, worst = _cve_evidence("Orthanc", "1.12.3")
    return [
        _f("DICOM-SERVICE-EXPOSED", *d, product=ORTHANC, evidence={"implementation_class_uid": "1.2.3"}),
        _f("DICOM-ANY-AE", *d, product=ORTHANC, evidence={"called_ae": "ANY-SCP", "calling_ae": HOSTILE}),
        _f(
            "DICOM-QUERY-PHI",
            *d,
            product=ORTHANC,
            evidence=_phi(20, 40, 480),
            summary="C-FIND at STUDY level answered 40 studies of 20 patients",
            holdings=_holdings(20, 40),
        ),
        _f(
            "DICOM-RETRIEVE-OPEN",
            *d,
            product=ORTHANC,
            evidence={"move_destination": "PACSRADAR", "images": 12},
        ),
        _f(
            "DICOM-STORE-OPEN",
            *d,
            product=ORTHANC,
            evidence={"sop_classes": ["CTImageStorage", "MRImageStorage"]},
        ),
        _f("DICOM-PLAINTEXT", *d, product=ORTHANC, evidence={"tls": False}),
        _f(
            "DICOM-KNOWN-CVE",
            *d,
            product=ORTHANC,
            evidence=cve,
            severity=worst,
            summary="Orthanc 1.12.3 on the DICOM port; 9 possible CVEs. A version string alone is not proof.",
        ),
        _f("WEB-SERVICE-EXPOSED", *w, product=ORTHANC, evidence={"server": "Orthanc", "status": 200}),
        _f(
            "WEB-UNAUTH-PHI",
            *w,
            product=ORTHANC,
            evidence=_phi(20, 40, 480),
            summary="/patients and /studies answered without credentials",
            holdings=_holdings(20, 40),
        ),
        _f(
            "DICOMWEB-UNAUTH-QIDO",
            *w,
            product=ORTHANC,
            evidence={"studies": 40, "path": "/dicom-web/studies"},
        ),
        _f(
            "DICOMWEB-UNAUTH-WADO",
            *w,
            product=ORTHANC,
            evidence={"instances": 1, "path": "/dicom-web/studies"},
        ),
        _f("DICOMWEB-STOW-OPEN", *w, product=ORTHANC, evidence={"status": 200, "method": "OPTIONS"}),
        _f(
            "WEB-ORTHANC-INSECURE",
            *w,
            product=ORTHANC,
            evidence={
                "settings": ["RemoteAccessAllowed", "AuthenticationEnabled=false", "DicomAlwaysAllowFind"]
            },
        ),
        _f(
            "VULN-KNOWN-CVE",
            *w,
            product=ORTHANC,
            evidence={k: v for k, v in cve.items() if k != "backported_by"},
            severity=worst,
            summary="Orthanc 1.12.3 reported; 9 CVEs. A version string alone is not proof.",
        ),
        _f("WEB-CORS-WILDCARD", *w, product=ORTHANC, evidence={"allow_origin": "*"}),
        _f("WEB-METRICS-OPEN", *w, product=ORTHANC, evidence={"path": "/tools/metrics-prometheus"}),
        _f("WEB-PLAINTEXT", *w, product=ORTHANC, evidence={"scheme": "http"}),
        _f("WEB-WEBDAV-OPEN", *w, product=ORTHANC, evidence={"path": "/webdav/", "status": 207}),
    ]


def _dcmqrscp(host: str, port: int) -> list[Finding]:
    d = (host, port, "dicom")
    cve, worst = _cve_evidence("DCMTK", "3.6.7")
    return [
        _f(
            "DICOM-SERVICE-EXPOSED",
            *d,
            product=DCMTK,
            evidence={"implementation_version_name": "OFFIS_DCMTK_367"},
        ),
        _f("DICOM-ANY-AE", *d, product=DCMTK, evidence={"called_ae": "DCMQRSCP"}),
        _f("DICOM-QUERY-PHI", *d, product=DCMTK, evidence=_phi(8, 16, 192), holdings=_holdings(8, 16)),
        _f("DICOM-RETRIEVE-OPEN", *d, product=DCMTK, evidence={"move_destination": "PACSRADAR"}),
        _f("DICOM-AE-GUESSABLE", *d, product=DCMTK, evidence={"guessed_ae": "DCMQRSCP", "tries": 41}),
        _f("DICOM-PLAINTEXT", *d, product=DCMTK, evidence={"tls": False}),
        _f("DICOM-USER-IDENTITY-IGNORED", *d, product=DCMTK, evidence={"identity_type": 2}),
        _f(
            "DICOM-KNOWN-CVE",
            *d,
            product=DCMTK,
            evidence=cve,
            severity=worst,
            summary="DCMTK 3.6.7 on the DICOM port; 8 possible CVEs. A version string alone is not proof.",
        ),
    ]


def _storescp_tls(host: str) -> list[Finding]:
    d = (host, 2762, "dicom")
    return [
        _f("DICOM-SERVICE-EXPOSED", *d, product=DCMTK, evidence={"tls": True}),
        _f("DICOM-STORE-OPEN", *d, product=DCMTK, evidence={"sop_classes": ["SecondaryCaptureImageStorage"]}),
        _f(
            "TLS-WEAK",
            *d,
            product=DCMTK,
            evidence={"protocols": ["TLSv1", "TLSv1.1"], "ciphers": ["AES128-SHA"]},
        ),
        _f("TLS-CERTIFICATE", *d, product=DCMTK, evidence={"self_signed": True, "key_bits": 1024}),
        _f("TLS-NO-CLIENT-AUTH", *d, product=DCMTK, evidence={"client_cert_requested": False}),
    ]


def _pynetdicom(host: str) -> list[Finding]:
    d = (host, 11112, "dicom")
    product = f"pynetdicom 2.0 {HOSTILE}"
    return [
        _f("DICOM-SERVICE-EXPOSED", *d, product=product, evidence={"implementation_version_name": HOSTILE}),
        _f("DICOM-ANY-AE", *d, product=product, evidence={"called_ae": HOSTILE}),
        _f("DICOM-STORE-OPEN", *d, product=product, evidence={"sop_classes": ["CTImageStorage"]}),
        _f("DICOM-PLAINTEXT", *d, product=product, evidence={"tls": False}),
        _f("DICOM-QUERY-PHI", *d, product=product, evidence=_phi(3, 3, 30), holdings=_holdings(3, 3)),
    ]


def _share(host: str) -> list[Finding]:
    s = (host, 21, "ftp")
    return [
        _f("SHARE-ANON-ACCESS", *s, product="vsftpd 3.0.3", evidence={"anonymous": True, "paths": ["/pub"]}),
        _f(
            "SHARE-ANON-DICOM",
            *s,
            product="vsftpd 3.0.3",
            evidence={"patients": 4, "studies": 4, "images": 40},
        ),
    ]


def board_report(scan_id: str = "board-1", started: datetime = T0) -> ScanReport:
    """56 findings on 8 services of 4 hosts, plus an HTTP server on DICOM port 104."""
    groups: dict[tuple[str, int, str], list[Finding]] = {}
    findings = [
        *_orthanc("127.0.0.1"),
        *_orthanc("127.0.0.3"),
        *_dcmqrscp("127.0.0.1", 11112),
        *_storescp_tls("127.0.0.1"),
        *_pynetdicom("127.0.0.2"),
        *_share("127.0.0.4"),
    ]
    for f in findings:
        groups.setdefault((f.endpoint.host, f.endpoint.port, f.endpoint.protocol), []).append(f)
    results = [
        TargetResult(
            endpoint=Endpoint(host=h, port=p, protocol=proto),  # type: ignore[arg-type]
            reachable=True,
            service="http" if proto == "http" else proto,
            product=fs[0].product,
            attempts=(Attempt(check="dicom.service", status=AttemptStatus.COMPLETED),),
            findings=tuple(fs),
            started_at=started,
        )
        for (h, p, proto), fs in groups.items()
    ]
    # An HTTP server on the DICOM port 104: the service check says "not DICOM" (no finding).
    results.append(
        TargetResult(
            endpoint=Endpoint(host="127.0.0.2", port=104, protocol="dicom"),
            reachable=True,
            service="http",
            attempts=(
                Attempt(
                    check="dicom.service",
                    status=AttemptStatus.SKIPPED,
                    reason="not DICOM",
                    details={"dicom": False, "answered_with": "http", "tls": False},
                ),
            ),
            started_at=started,
        )
    )
    results.sort(key=lambda r: (r.endpoint.host, r.endpoint.port))
    return ScanReport(
        scan_id=scan_id,
        version="0.1.0",
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        scope=("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"),
        stats=ScanStats(
            endpoints_total=40,
            endpoints_done=40,
            endpoints_open=len(results),
            endpoints_closed=40 - len(results),
        ),
        results=tuple(results),
    )


def board_history(n: int = 6) -> list[ScanReport]:
    """Earlier weekly scans of the same scope (fewer findings), then the board scan."""
    full = board_report()
    everything = [f for r in full.results for f in r.findings]
    out = []
    for i in range(n - 1):
        started = T0 - timedelta(days=7 * (n - 1 - i))
        kept = set(f.dedupe_key for f in everything[: 20 + i * 6])
        results = tuple(
            r.model_copy(
                update={"findings": tuple(f for f in r.findings if f.dedupe_key in kept)}
            ).model_copy(update={"started_at": started})
            for r in full.results
        )
        out.append(
            full.model_copy(
                update={
                    "scan_id": f"board-0{i}",
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=2),
                    "results": results,
                }
            )
        )
    out.append(full)
    return out


__all__ = ["HOSTILE", "board_history", "board_report"]


# -- what a person sees, measured in the browser ---------------------------------------------

#: Elements that must sit on one line: ids, severities, ports, products, dates, statuses.
ONE_LINE = ".sev, code.check-id, code.chip, .port, .product, span.date, td.c-status > a"

#: The texts of ``selector`` elements whose text runs over more than one line.
WRAPPED_JS = """(selector) => {
  const bad = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.offsetParent) continue;  // inside a closed <details>
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0)
      .map(r => r.top).sort((a, b) => a - b);
    let lines = tops.length ? 1 : 0;
    for (let i = 1; i < tops.length; i++) if (tops[i] - tops[i - 1] > 4) lines++;
    if (lines > 1) bad.push(el.textContent.trim());
  }
  return bad;
}"""

#: Cells whose content spills into the next cell (a nowrap text wider than its column).
OVERLAP_JS = """() => {
  const bad = [];
  for (const table of document.querySelectorAll("table.findings")) {
    const wide = table.getBoundingClientRect().width > table.parentElement.clientWidth + 1;
    if (wide) bad.push("table wider than its box");
  }
  for (const tr of document.querySelectorAll("table.findings tr")) {
    const cells = [...tr.children];
    for (let i = 0; i + 1 < cells.length; i++) {
      if (cells[i].scrollWidth > cells[i].clientWidth + 1) bad.push(cells[i].textContent.trim().slice(0, 60));
    }
  }
  return bad;
}"""

#: Marks and labels of each chart that fall outside its SVG box, and SVGs outside their section.
CHART_JS = """() => {
  const bad = [];
  for (const svg of document.querySelectorAll("svg.chart")) {
    const box = svg.getBoundingClientRect();
    const section = svg.closest("section").getBoundingClientRect();
    if (box.left < section.left - 1 || box.right > section.right + 1) bad.push("svg outside its section");
    for (const el of svg.querySelectorAll("text, circle, polyline, rect, line")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      const out = r.left < box.left - 1 || r.right > box.right + 1;
      if (out || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        bad.push(el.tagName + ":" + (el.textContent || "").trim());
    }
  }
  return bad;
}"""

__all__ += ["CHART_JS", "ONE_LINE", "OVERLAP_JS", "WRAPPED_JS"]
