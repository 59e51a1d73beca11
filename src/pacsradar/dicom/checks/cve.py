"""DICOM-KNOWN-CVE: the product named on a DICOM port runs a version with known CVEs.

The product and version come from the A-ASSOCIATE-AC (PS3.7 D.3.3.2: DCMTK puts its version in
its Implementation Class UID) as refined by :func:`pacsradar.dicom.fingerprint.refine` (Orthanc
behind DCMTK's UID), or from a web API on the same host. Only entries reachable through a DICOM
server port count (surfaces ``dicom-scp`` and ``dicom-file``: the server parses what peers send);
a flaw in DCMTK's client tools does not make a server vulnerable. A version string alone is not
proof, Debian backports many DCMTK fixes: every match is "possible" (:mod:`pacsradar.vulns`).

Orthanc does not say its version on the DICOM port. When the scan also covers web ports, the
same host's Orthanc REST API is asked (``GET /system``, anonymously, on at most three in-scope
web ports): if it reports this port as its ``DicomPort`` the DICOM port is named
"Orthanc <Version>". A /system behind a login is read by the web audit instead (its
WEB-ORTHANC-INSECURE attempt), not from here: the DICOM side never spends login attempts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from pacsradar.checks import Check, CheckOutcome, CheckSpec, cwe, skipped
from pacsradar.dicom.context import DicomContext
from pacsradar.dicom.fingerprint import DCMTK_BASED, with_web_identity
from pacsradar.errors import ProtocolError, ScanError
from pacsradar.models import Evidence, Reference, Severity
from pacsradar.phi import peer_text
from pacsradar.vulns import backport_note, cve_evidence, matching

KNOWN_CVE = CheckSpec(
    id="DICOM-KNOWN-CVE",
    title="DICOM server version with known vulnerabilities",
    severity=Severity.HIGH,
    severity_varies="the worst rating among the CVEs the version matches",
    category="vulnerability",
    description=(
        "The implementation behind this DICOM port reports a version affected by published"
        " vulnerabilities reachable through a DICOM server. Confidence is 'possible': only the"
        " version string says so, and distributions backport fixes."
    ),
    remediation=(
        "Upgrade to a fixed release, or confirm with the vendor/distribution that the installed"
        " package carries the fix; until then keep the port reachable only by known modalities."
    ),
    product_remediation={
        "Orthanc": "Orthanc: upgrade to 1.12.11 or later (or the distribution's patched package).",
        "DCMTK": (
            "DCMTK: upgrade to a release after 3.7.0 (CISA ICSMA-26-181-01), or check the Debian"
            " changelog of the dcmtk package for the CVEs listed."
        ),
    },
    references=(
        Reference(title="NVD: National Vulnerability Database", url="https://nvd.nist.gov/"),
        cwe(1104),
    ),
    cwe="CWE-1104",
)
SPECS = (KNOWN_CVE,)

#: Flaws a DICOM server port exposes: its own network service, and the files peers send it.
DICOM_SERVER_SURFACES = frozenset({"dicom-scp", "dicom-file"})


#: Orthanc's default HTTP port first (Orthanc Book, configuration "HttpPort": 8042).
_ORTHANC_HTTP = 8042
_MAX_WEB_PORTS = 3
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+~_-]{0,31}$")


async def _orthanc_rest_identity(ctx: DicomContext) -> tuple[str, int] | None:
    """(Version, web port) from an Orthanc on the same host whose /system names this DICOM port."""
    if "web" not in ctx.options.only:
        return None
    from pacsradar.web.client import WebClient  # the web stack only when web is in scope

    ports = sorted(
        {p for p in ctx.options.web_ports if p != ctx.endpoint.port}, key=lambda p: (p != _ORTHANC_HTTP, p)
    )[:_MAX_WEB_PORTS]
    limits = ctx.options.limits
    for port in ports:
        client = WebClient(
            ctx.endpoint.host, port, "http", net=ctx.net, limits=limits,
            deadline=time.monotonic() + limits.connect_timeout + 2 * limits.read_timeout,
        )  # fmt: skip
        try:
            reply = await client.request("GET", "/system", max_body=64 * 1024)
            data = reply.json() if reply.status == 200 else None
        except (ScanError, ProtocolError):
            continue
        finally:
            await client.aclose()
        if not isinstance(data, dict) or data.get("DicomPort") != ctx.endpoint.port:
            continue
        version = peer_text(data.get("Version", ""), 32)
        if _VERSION.match(version):
            return version, port
    return None


async def run(ctx: DicomContext) -> CheckOutcome:
    fp = ctx.fingerprint
    if fp is None or fp.confidence in ("none", "low"):
        return skipped("implementation not identified")
    if (fp.product == "Orthanc" and fp.version is None) or fp.product == DCMTK_BASED:
        found = await _orthanc_rest_identity(ctx)
        if found is not None:
            version, port = found
            where = f"Orthanc REST /system on port {port} reports this DicomPort and Version {version}"
            fp = ctx.fingerprint = with_web_identity(fp, "Orthanc", version, where)
    if fp.version is None:
        return skipped("version not disclosed on the DICOM port", product=fp.product)
    hits = matching(fp.product, fp.version, DICOM_SERVER_SURFACES)
    details: Evidence = {
        "product": fp.product,
        "version": fp.version,
        "product_basis": list(fp.basis),
        "matches": len(hits),
    }
    if not hits:
        return CheckOutcome(details=details)
    worst = max((Severity(e.severity) for e in hits), key=lambda s: s.rank)
    notes = []
    for e in hits:
        backport = backport_note(e)
        notes.append(f"{e.cve} (possible: {e.fixed_in_text}" + (f"; {backport}" if backport else "") + ")")
    finding = KNOWN_CVE.finding(
        ctx.endpoint_for_findings(),
        summary=f"{fp.label} on the DICOM port; {', '.join(notes)}. A version string alone is not proof.",
        evidence=cve_evidence(fp.product, fp.version, hits),
        product=ctx.product,
        severity=worst,
        severity_reason=_worst_reason(hits, worst),
    )
    return CheckOutcome(details=details, findings=(finding,))


def _worst_reason(hits: Sequence[Any], worst: Severity) -> str:
    """Why the finding is rated ``worst``: the CVEs of that rating (cves.json, from NVD)."""
    rated = [e.cve for e in hits if Severity(e.severity) is worst]
    return f"{', '.join(rated[:5])}, rated {worst.value} (cves.json, from the advisories)"


CHECK: Check[DicomContext] = Check(name="dicom.cve", specs=SPECS, run=run)
