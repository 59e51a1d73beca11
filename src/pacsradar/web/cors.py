"""WEB-CORS-WILDCARD: any web site may read this API through a visitor's browser.

One GET of the most sensitive path we know (the QIDO-RS listing if open, else the product API,
else /) with an ``Origin`` nobody owns; the answer's ``Access-Control-Allow-Origin`` is judged,
the body is not read.
"""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, CheckSpec
from pacsradar.models import Evidence, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.refs import ACCESS, CWE_942

PROBE_ORIGIN = "https://cors-probe.pacsradar.invalid"  # RFC 2606: .invalid never resolves

CORS_WILDCARD = CheckSpec(
    id="WEB-CORS-WILDCARD",
    title="CORS lets any web site read the API",
    severity=Severity.MEDIUM,
    severity_varies="high when the visitor's session or PHI is readable cross-origin",
    category="access-control",
    description=(
        "The service answers cross-origin requests with Access-Control-Allow-Origin: * (or"
        " echoes any origin): a malicious page opened by someone on the network can read the"
        " API through their browser."
    ),
    remediation="Allow only the viewer origins that need the API; never '*' for PHI routes.",
    product_remediation={
        "Orthanc": "Orthanc: remove wildcard CORS headers from the reverse proxy in front of it.",
    },
    references=(*ACCESS, CWE_942),
    cwe="CWE-942",
)

SPECS: tuple[CheckSpec, ...] = (CORS_WILDCARD,)


async def _run(ctx: WebContext) -> CheckOutcome:
    qido = ctx.qido
    if qido is not None and qido.status == "open" and qido.base:
        path, label = f"{qido.base}/studies?limit=1", "qido-rs"
    elif ctx.is_product("Orthanc"):
        path, label = "/system", "api"
    else:
        path, label = "/", "root"
    reply = await ctx.client.request(
        "GET", path, headers={"Origin": PROBE_ORIGIN}, read_body=False, follow=False
    )
    allow = (reply.header("access-control-allow-origin") or "").strip()
    credentials = (reply.header("access-control-allow-credentials") or "").strip().lower()
    wildcard = allow == "*"
    reflected = allow == PROBE_ORIGIN
    details: Evidence = {
        "path": label,
        "status_code": reply.status,
        "wildcard": wildcard,
        "reflects_origin": reflected,
        "allow_credentials": credentials == "true",
    }
    if not (wildcard or reflected) or reply.status >= 400:
        return CheckOutcome(details=details)
    severity = Severity.MEDIUM
    if reflected and credentials == "true":
        severity = Severity.HIGH  # the visitor's own session is usable cross-origin
    elif ctx.phi_exposed and label != "root":
        severity = Severity.HIGH
    finding = CORS_WILDCARD.finding(
        ctx.endpoint,
        summary=(
            "Access-Control-Allow-Origin "
            + ("is '*'" if wildcard else "echoes any origin")
            + (" with credentials" if credentials == "true" else "")
            + f" on the {label} route"
        ),
        evidence=details,
        product=ctx.product_label,
        severity=severity,
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[WebContext] = Check(name="web.cors", specs=SPECS, run=_run)

__all__ = ["CHECK", "CORS_WILDCARD", "PROBE_ORIGIN", "SPECS"]
