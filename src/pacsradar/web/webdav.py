"""WEB-WEBDAV-OPEN: a WebDAV share of the archive answers anonymous PROPFIND.

Orthanc's ``/webdav/`` (WebDavEnabled, default true since 1.8.0; WebDavUploadAllowed default
true, shared/reference/orthanc_security_keys.csv) lays studies out by patient name. The probe is
``PROPFIND`` with ``Depth: 0`` (RFC 4918 §9.1): only the share root itself, never its listing,
and the body is not read; a 207 Multi-Status is the evidence.
"""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.models import Evidence, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.data import fingerprint_table
from pacsradar.web.refs import ACCESS, CWE_306

WEBDAV_OPEN = CheckSpec(
    id="WEB-WEBDAV-OPEN",
    title="WebDAV share of the archive open without authentication",
    severity=Severity.HIGH,
    category="access-control",
    description=(
        "A WebDAV share answers anonymous requests. Orthanc's share is organised by patient"
        " name and study date, can be mounted as a network drive, and accepts uploads by"
        " default."
    ),
    remediation="Disable the WebDAV share or require authentication for it.",
    product_remediation={
        "Orthanc": (
            "Orthanc: set WebDavEnabled false (and WebDavUploadAllowed false), or enable"
            " AuthenticationEnabled with strong RegisteredUsers."
        ),
    },
    references=(*ACCESS, CWE_306),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (WEBDAV_OPEN,)


async def _run(ctx: WebContext) -> CheckOutcome:
    paths = fingerprint_table().paths_for(ctx.product).webdav
    if not paths:
        return skipped("no WebDAV share known for this product")
    details: Evidence = {}
    for path in paths:
        reply = await ctx.client.request(
            "PROPFIND", path, headers={"Depth": "0"}, read_body=False, follow=False
        )
        details["status_code"] = reply.status
        if reply.needs_auth:
            ctx.auth_seen = True
            details["auth_required"] = True
            continue
        if reply.status == 207:
            finding = WEBDAV_OPEN.finding(
                ctx.endpoint,
                summary=f"WebDAV share at {path} answers anonymous PROPFIND (207 Multi-Status)",
                evidence={"path": path, "status_code": 207},
                product=ctx.product_label,
            )
            return CheckOutcome(details=details, findings=(finding,))
    return CheckOutcome(details=details)


CHECK: Check[WebContext] = Check(name="web.webdav", specs=SPECS, run=_run)

__all__ = ["CHECK", "SPECS", "WEBDAV_OPEN"]
