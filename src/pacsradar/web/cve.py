"""VULN-KNOWN-CVE: the product version falls in a known-vulnerable range (``data/cves.json``,
loaded by :mod:`pacsradar.vulns`; the DICOM side has its own check, dicom/checks/cve.py).

A version string alone is not proof: distributions backport fixes (Debian's Orthanc 1.10.1
carries the CVE-2023-33466 fix), so a match is reported as "possible" unless this scan also
observed the vulnerable behaviour itself (then "likely").
"""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.models import Evidence, Reference, Severity
from pacsradar.vulns import CveEntry, backport_note
from pacsradar.vulns import matching as _matching
from pacsradar.web.context import WebContext
from pacsradar.web.refs import CWE_1104

KNOWN_CVE = CheckSpec(
    id="VULN-KNOWN-CVE",
    title="Product version with known vulnerabilities",
    severity=Severity.HIGH,
    severity_varies="the worst rating among the CVEs the version matches",
    category="vulnerability",
    description=(
        "The version the service reports is affected by published vulnerabilities. Confidence"
        " is 'possible' when only the version string says so (distributions backport fixes)."
    ),
    remediation="Upgrade to a fixed release, or confirm with the vendor/distribution that the"
    " installed package carries the fix.",
    product_remediation={
        "Orthanc": "Orthanc: upgrade to 1.12.11 or later (or the distribution's patched package).",
    },
    references=(
        Reference(title="NVD: National Vulnerability Database", url="https://nvd.nist.gov/"),
        CWE_1104,
    ),
    cwe="CWE-1104",
)

SPECS: tuple[CheckSpec, ...] = (KNOWN_CVE,)


#: What a web endpoint exposes: the HTTP server itself and the DICOM files it accepts (uploads).
WEB_SURFACES = frozenset({"http", "dicom-file"})


def matching(product: str, version: str) -> list[CveEntry]:
    return _matching(product, version, WEB_SURFACES)


def _confidence(ctx: WebContext, entry: CveEntry) -> str:
    if entry.observable == "unauthenticated" and ctx.phi_exposed:
        return "likely"
    return "possible"


async def _run(ctx: WebContext) -> CheckOutcome:
    fp = ctx.fingerprint
    if fp is None or fp.product is None:
        return skipped("product not identified")
    if fp.version is None:
        return skipped("product version not disclosed", product=fp.product)
    hits = matching(fp.product, fp.version)
    details: Evidence = {"product": fp.product, "version": fp.version, "matches": len(hits)}
    if not hits:
        return CheckOutcome(details=details)
    worst = max((Severity(e.severity) for e in hits), key=lambda s: s.rank)
    notes = []
    for e in hits:
        backport = backport_note(e)
        notes.append(
            f"{e.cve} ({_confidence(ctx, e)}: {e.fixed_in_text}" + (f"; {backport}" if backport else "") + ")"
        )
    finding = KNOWN_CVE.finding(
        ctx.endpoint,
        summary=f"{fp.product} {fp.version} reported; "
        + ", ".join(notes)
        + ". A version string alone is not proof.",
        evidence={
            "product": fp.product,
            "version": fp.version,
            "cves": [e.cve for e in hits],
            "confidence": [_confidence(ctx, e) for e in hits],
            "fixed_in": [e.fixed_in_text for e in hits],
            "sources": [e.source_url for e in hits],
        },
        product=ctx.product_label,
        severity=worst,
        severity_reason=", ".join(e.cve for e in hits if Severity(e.severity) is worst)
        + f", rated {worst.value} (cves.json, from the advisories)",
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[WebContext] = Check(name="web.cve", specs=SPECS, run=_run)

__all__ = ["CHECK", "KNOWN_CVE", "SPECS", "matching"]
