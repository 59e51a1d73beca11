"""DICOMWEB-UNAUTH-WADO: WADO-RS retrieves study content for anonymous callers (PS3.18 §10.4).

Proof without collection: ``GET {base}/studies/{uid}/metadata`` for one study that QIDO-RS
listed, reading at most 64 KiB that are dropped unparsed; a 200 with a DICOM JSON media type is
the evidence. Pixel data is never requested.
"""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, CheckSpec, skipped
from pacsradar.models import Severity
from pacsradar.web.context import WebContext
from pacsradar.web.qido import qido_count
from pacsradar.web.refs import ACCESS, CWE_306, PS318

UNAUTH_WADO = CheckSpec(
    id="DICOMWEB-UNAUTH-WADO",
    title="DICOMweb WADO-RS retrieves studies without authentication",
    severity=Severity.CRITICAL,
    category="access-control",
    description=(
        "The WADO-RS retrieve service (DICOM PS3.18) returns study metadata (and so images) to"
        " anonymous callers: full patient demographics and the images themselves."
    ),
    remediation=(
        "Require authentication for every DICOMweb route including WADO-RS and WADO-URI, and"
        " restrict network access to the viewers that need it."
    ),
    product_remediation={
        "Orthanc": (
            "Orthanc: AuthenticationEnabled true with strong RegisteredUsers, or the"
            " authorization plugin in front of /dicom-web and /wado."
        ),
        "dcm4chee": "dcm4chee-arc-light: secured archive (Keycloak) for the RESTful services.",
    },
    references=(PS318, *ACCESS, CWE_306),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (UNAUTH_WADO,)
_PROBE_BYTES = 64 * 1024


async def _run(ctx: WebContext) -> CheckOutcome:
    qido = await qido_count(ctx)
    if qido.status != "open" or not qido.base:
        return skipped("no anonymous QIDO-RS to take a study from", qido=qido.status)
    if not qido.sample_study_uid:
        return skipped("QIDO-RS listed no study to retrieve", qido=qido.status)
    reply = await ctx.client.request(
        "GET",
        f"{qido.base}/studies/{qido.sample_study_uid}/metadata",
        headers={"Accept": "application/dicom+json, application/json;q=0.9"},
        max_body=_PROBE_BYTES,
        truncate_ok=True,
    )
    details = {"status_code": reply.status, "media_type_dicom_json": _dicom_json(reply.content_type)}
    if reply.status == 200 and _dicom_json(reply.content_type) and reply.body[:64].lstrip()[:1] == b"[":
        ctx.phi_exposed = True
        finding = UNAUTH_WADO.finding(
            ctx.endpoint,
            summary=(f"WADO-RS at {qido.base_template} returned study metadata without authentication"),
            evidence={"path": qido.base_template, "retrieved": "metadata", "status_code": 200},
            product=ctx.product_label,
        )
        return CheckOutcome(details=details, findings=(finding,))
    return CheckOutcome(details=details)


def _dicom_json(media_type: str) -> bool:
    return media_type in ("application/dicom+json", "application/json")


CHECK: Check[WebContext] = Check(name="web.dicomweb.wado", specs=SPECS, run=_run)

__all__ = ["CHECK", "SPECS", "UNAUTH_WADO"]
