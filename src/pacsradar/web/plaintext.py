"""WEB-PLAINTEXT: patient data, logins or a PACS product over HTTP without TLS.

Judged from what the earlier checks saw on this endpoint: PHI served anonymously, a login
prompt, a working login, a fingerprinted medical imaging product or a DICOMweb service.
HIPAA §164.312(e)(1) and PS3.15 Annex B expect transport security for those. A plain web
server with none of them (a file listing, a default page) is not a finding: the service row
(WEB-SERVICE-EXPOSED) already records that it answers (issue 12 point 13).
"""

from __future__ import annotations

from pacsradar.checks import PS315_ANNEX_B, Check, CheckOutcome, CheckSpec
from pacsradar.models import Evidence, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.refs import CWE_319, TRANSPORT

PLAINTEXT = CheckSpec(
    id="WEB-PLAINTEXT",
    title="Medical web service over plaintext HTTP",
    severity=Severity.HIGH,
    severity_varies="medium when neither PHI nor a login crosses it",
    category="transport",
    description=(
        "The service speaks plain HTTP and does not redirect to HTTPS: patient data, session"
        " cookies and passwords cross the network readable by anyone on the path."
    ),
    remediation=("Serve only HTTPS (TLS 1.2 or later) and redirect HTTP to it, or close the HTTP port."),
    product_remediation={
        "Orthanc": (
            "Orthanc: set SslEnabled true with SslCertificate (PEM with key and certificate),"
            " or terminate TLS in a reverse proxy and bind Orthanc to localhost."
        ),
        "dcm4chee": "dcm4chee-arc-light: use the HTTPS listener (8443) and disable 8080.",
    },
    references=(*TRANSPORT, PS315_ANNEX_B, CWE_319),
    cwe="CWE-319",
)

SPECS: tuple[CheckSpec, ...] = (PLAINTEXT,)


async def _run(ctx: WebContext) -> CheckOutcome:
    if ctx.scheme == "https":
        return CheckOutcome(details={"tls": True})
    root = ctx.cached("/")
    redirects_to_https = bool(root and root.offsite_redirect_scheme == "https")
    details: Evidence = {
        "tls": False,
        "redirects_to_https": redirects_to_https,
        "phi_exposed": ctx.phi_exposed,
        "login_over_http": ctx.auth_seen,
    }
    if redirects_to_https:
        return CheckOutcome(details=details)
    dicomweb = ctx.qido is not None and ctx.qido.status != "absent"
    details["dicomweb"] = dicomweb
    if ctx.phi_exposed or ctx.credential is not None:
        severity, why = Severity.HIGH, "patient data is served over plain HTTP"
    elif ctx.auth_seen:
        severity, why = Severity.HIGH, "passwords would cross the network in clear text"
    elif ctx.product is not None or dicomweb:
        severity, why = Severity.MEDIUM, "a medical imaging service answers over plain HTTP"
    else:
        # No PHI, no login, no PACS product, no DICOMweb: nothing that needs transport
        # security was seen, so no finding (the attempt's details still say "tls": false).
        return CheckOutcome(details=details)
    finding = PLAINTEXT.finding(
        ctx.endpoint,
        summary=f"No TLS and no redirect to HTTPS: {why}",
        evidence=details,
        product=ctx.product_label,
        severity=severity,
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[WebContext] = Check(name="web.plaintext", specs=SPECS, run=_run)

__all__ = ["CHECK", "PLAINTEXT", "SPECS"]
