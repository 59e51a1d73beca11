"""WEB-UNAUTH-PHI: an API or UI lists patients or studies to anyone, with how many.

Counts only: Orthanc's ``/statistics`` (CountPatients/CountStudies/CountSeries/CountInstances,
Orthanc's own distinct counts), otherwise the QIDO-RS count of :mod:`pacsradar.web.qido`
(distinct keyed hashes). Bodies are parsed and dropped. The finding carries the keyed hashes of
the QIDO-RS walk (also behind ``/statistics`` when DICOMweb is open) so the scan headline can
count each patient once across services; ``images`` is the per-service instance count.
"""

from __future__ import annotations

from typing import Any

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.errors import ProtocolError, ScanError
from pacsradar.models import Evidence, Holdings, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.data import fingerprint_table
from pacsradar.web.qido import qido_count
from pacsradar.web.refs import ACCESS, CWE_306, ORTHANC_SECURITY

UNAUTH_PHI = CheckSpec(
    id="WEB-UNAUTH-PHI",
    title="Patient data listed by a web API without authentication",
    severity=Severity.CRITICAL,
    category="access-control",
    description=(
        "A PACS web API or viewer answers anonymous requests with patient and study data."
        " Anyone who can reach the port can enumerate and download the archive."
    ),
    remediation=(
        "Take the service off untrusted networks now, then require authentication for every"
        " route (API, viewer and DICOMweb) and review access logs for past downloads (breach"
        " assessment under HIPAA §164.402 / GDPR Art. 33)."
    ),
    product_remediation={
        "Orthanc": (
            "Orthanc: set AuthenticationEnabled true and declare RegisteredUsers with strong"
            " passwords (never leave it empty: Orthanc then creates orthanc:orthanc), set"
            " RemoteAccessAllowed false unless needed, and enable SslEnabled."
        ),
        "dcm4chee": "dcm4chee-arc-light: deploy the secured archive (Keycloak) for UI and REST.",
    },
    references=(*ACCESS, CWE_306, ORTHANC_SECURITY),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (UNAUTH_PHI,)

_ORTHANC_COUNTS = {
    "CountPatients": "patients",
    "CountStudies": "studies",
    "CountSeries": "series",
    "CountInstances": "instances",
}


def _orthanc_counts(data: Any) -> dict[str, int] | None:
    if not isinstance(data, dict):
        return None
    counts: dict[str, int] = {}
    for key, name in _ORTHANC_COUNTS.items():
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            counts[name] = value
    return counts if "studies" in counts or "patients" in counts else None


async def _run(ctx: WebContext) -> CheckOutcome:
    paths = fingerprint_table().paths_for(ctx.product)
    label = ctx.product_label
    if paths.statistics:
        reply = await ctx.get(paths.statistics, truncate_ok=False)
        if reply.needs_auth or reply.status == 403:
            return CheckOutcome(details={"source": "statistics", "auth_required": True})
        if reply.status == 200:
            try:
                counts = _orthanc_counts(reply.json())
            except ProtocolError:
                counts = None
            if counts is not None:
                return _finding(ctx, counts, "statistics", label, holdings=await _qido_holdings(ctx))
    qido = await qido_count(ctx)
    if qido.status == "open":
        counts = {"studies": qido.studies}
        if qido.patients is not None:
            counts["patients"] = qido.patients
        if qido.instances is not None:
            counts["instances"] = qido.instances
        return _finding(ctx, counts, "qido-rs", label, truncated=qido.truncated, holdings=qido.holdings)
    if qido.status == "auth":
        return CheckOutcome(details={"source": "qido-rs", "auth_required": True})
    return skipped("no patient-listing API recognised on this service")


async def _qido_holdings(ctx: WebContext) -> Holdings | None:
    """The keyed hashes behind an Orthanc /statistics count, when DICOMweb lists the same data."""
    try:
        qido = await qido_count(ctx)
    except ScanError:
        return None
    return qido.holdings if qido.status == "open" else None


def _finding(
    ctx: WebContext,
    counts: dict[str, int],
    source: str,
    label: str | None,
    *,
    truncated: bool = False,
    holdings: Holdings | None = None,
) -> CheckOutcome:
    ctx.phi_exposed = ctx.phi_exposed or any(counts.values())
    if "instances" in counts:
        # The estate headline reads "images" (report/exposure.py); instances are images.
        counts = {**counts, "images": counts["instances"]}
    evidence: Evidence = {
        **counts,
        "source": source,
        "truncated": truncated,
        "identities_linked": holdings is not None,
    }
    has_data = any(counts.values())
    parts = [f"{counts[k]} {k}" for k in ("patients", "studies", "series", "instances") if k in counts]
    summary = (
        f"{', '.join(parts)} listed without authentication (source: {source})"
        if has_data
        else f"patient/study API open without authentication, currently empty (source: {source})"
    )
    finding = UNAUTH_PHI.finding(
        ctx.endpoint,
        summary=summary,
        evidence=evidence,
        product=label,
        severity=Severity.CRITICAL if has_data else Severity.HIGH,
        holdings=holdings,
    )
    return CheckOutcome(details=evidence, findings=(finding,))


CHECK: Check[WebContext] = Check(name="web.unauth_phi", specs=SPECS, run=_run)

__all__ = ["CHECK", "SPECS", "UNAUTH_PHI"]
