"""Plaintext DICOM: the service answered without TLS (PS3.15 Annex B secure transport)."""

from __future__ import annotations

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_TRANSMISSION,
    PS315_ANNEX_B,
    Check,
    CheckOutcome,
    CheckSpec,
    cwe,
    skipped,
)
from pacsradar.dicom.context import DicomContext
from pacsradar.models import Severity

PLAINTEXT = CheckSpec(
    id="DICOM-PLAINTEXT",
    title="DICOM service without TLS",
    severity=Severity.MEDIUM,
    severity_varies="high when query results with PHI cross it",
    category="dicom",
    description=(
        "The DICOM service speaks the Upper Layer protocol in clear text: patient data and AE "
        "titles cross the network unencrypted and unauthenticated."
    ),
    remediation=(
        "Offer DICOM over TLS (PS3.15 Annex B, port 2762) with client certificates, or tunnel the "
        "link through a VPN; close the plaintext port to everything but legacy modalities."
    ),
    product_remediation={
        "DCMTK-based": (
            'Orthanc: set "DicomTlsEnabled": true with DicomTlsCertificate/DicomTlsPrivateKey and '
            '"DicomTlsRemoteCertificateRequired": true. DCMTK tools: run with +tls and --require-peer-cert.'
        ),
    },
    references=(PS315_ANNEX_B, HIPAA_TRANSMISSION, GDPR_ART32, cwe(319)),
    cwe="CWE-319",
)
SPECS = (PLAINTEXT,)


async def run(ctx: DicomContext) -> CheckOutcome:
    if ctx.service != "dicom":
        return skipped("no plaintext DICOM answer" if ctx.service != "dicom-tls" else "service uses TLS")
    phi = ctx.query is not None and ctx.query.exposes_records and bool(ctx.query.phi_keywords)
    details = {"tls": False, "phi_over_plaintext": phi}
    finding = PLAINTEXT.finding(
        ctx.endpoint_for_findings(),
        summary="DICOM answered in clear text"
        + ("; query results with PHI travel unencrypted" if phi else ""),
        evidence=details,
        product=ctx.product,
        severity=Severity.HIGH if phi else Severity.MEDIUM,
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[DicomContext] = Check(name="dicom.plaintext", specs=SPECS, run=run)
