"""DICOMWEB-STOW-OPEN: STOW-RS accepts requests from anonymous callers (PS3.18 §10.5).

Never uploads. Judged from ``OPTIONS`` (an ``Allow`` header listing POST) and from an empty
``multipart/related; type="application/dicom"`` body that carries no part at all: a server that
answers it for its *content* (200 with nothing stored, 400, 409, 415) rather than with 401/403
would store whatever an anonymous caller sends.
"""

from __future__ import annotations

import secrets

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.errors import ScanError
from pacsradar.models import Evidence, Severity
from pacsradar.web.context import WebContext
from pacsradar.web.qido import candidate_bases, qido_count
from pacsradar.web.refs import ACCESS, CWE_306, PS318

STOW_OPEN = CheckSpec(
    id="DICOMWEB-STOW-OPEN",
    title="DICOMweb STOW-RS accepts uploads without authentication",
    severity=Severity.HIGH,
    category="integrity",
    description=(
        "The STOW-RS store service (DICOM PS3.18) answers anonymous POSTs on content rather"
        " than refusing them: anyone can inject or overwrite studies (integrity, and a way to"
        " plant malicious DICOM files for viewers)."
    ),
    remediation=(
        "Require authentication for STOW-RS and allow uploads only from the modalities and"
        " gateways that need them."
    ),
    product_remediation={
        "Orthanc": (
            "Orthanc: AuthenticationEnabled true with strong RegisteredUsers; Orthanc has no"
            " per-route write protection without the authorization plugin."
        ),
    },
    references=(PS318, *ACCESS, CWE_306),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (STOW_OPEN,)
_CONTENT_REJECTIONS = frozenset({200, 202, 204, 400, 409, 411, 413, 415, 422})


async def _run(ctx: WebContext) -> CheckOutcome:
    qido = await qido_count(ctx)
    if qido.status == "open" and qido.base:
        bases = [(qido.base_template or qido.base, qido.base)]
    elif qido.status == "auth":
        bases = candidate_bases(ctx)[:1]
    else:
        return skipped("no DICOMweb service found", qido=qido.status)
    template, base = bases[0]
    details: Evidence = {"path": template}
    allow_post = False
    try:
        options = await ctx.client.request("OPTIONS", f"{base}/studies", read_body=False)
        allow = (options.header("allow") or "").upper()
        allow_post = options.status < 300 and "POST" in allow
        details["options_status"] = options.status
    except ScanError:
        details["options_status"] = None
    boundary = "pacsradar" + secrets.token_hex(8)
    reply = await ctx.client.request(
        "POST",
        f"{base}/studies",
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
        content=f"--{boundary}--\r\n".encode(),
        max_body=64 * 1024,
        truncate_ok=True,
    )
    details["empty_post_status"] = reply.status
    details["allow_lists_post"] = allow_post
    if reply.needs_auth or reply.status == 403:
        return CheckOutcome(details=details)
    if reply.status in _CONTENT_REJECTIONS or allow_post:
        finding = STOW_OPEN.finding(
            ctx.endpoint,
            summary=(
                f"STOW-RS at {template} answered an anonymous, empty upload with HTTP"
                f" {reply.status} (judged on content, not authorization); nothing was stored"
            ),
            evidence={
                "path": template,
                "empty_post_status": reply.status,
                "allow_lists_post": allow_post,
            },
            product=ctx.product_label,
        )
        return CheckOutcome(details=details, findings=(finding,))
    return CheckOutcome(details=details)


CHECK: Check[WebContext] = Check(name="web.dicomweb.stow", specs=SPECS, run=_run)

__all__ = ["CHECK", "SPECS", "STOW_OPEN"]
