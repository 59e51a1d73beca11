"""Retrieve exposure: C-GET/C-MOVE presentation contexts accepted for an unknown peer.

By default this is judged from negotiation alone (PS3.8 §9.3.3.2: accepted contexts). With
``--intrusive`` we add one C-MOVE (PS3.4 C.4.2) for a *random, non-existent* Study Instance UID
to a random, unregistered destination AE, so no image can ever move, and read how the server
refuses: 'Move Destination unknown' (0xA801) means it never asked who *we* are.
"""

from __future__ import annotations

import uuid

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_ACCESS,
    PS34_QR,
    Check,
    CheckOutcome,
    CheckSpec,
    cwe,
    skipped,
)
from pacsradar.dicom import dimse
from pacsradar.dicom.checks._remediation import AE_POLICY
from pacsradar.dicom.client import IMPLICIT_VR_LE
from pacsradar.dicom.context import DicomContext, random_aet
from pacsradar.dicom.sop import CANARY_SYNTAX, GET_CLASSES, MOVE_CLASSES, NAMES, STUDY_ROOT_MOVE
from pacsradar.models import Evidence, Severity

RETRIEVE_OPEN = CheckSpec(
    id="DICOM-RETRIEVE-OPEN",
    title="DICOM retrieve (C-GET/C-MOVE) offered to an unknown peer",
    severity=Severity.HIGH,
    severity_varies="medium unverified on a peer without records; low when --intrusive sees C-MOVE refused",
    category="dicom",
    description=(
        "The service negotiated C-GET or C-MOVE for an unregistered AE title. If retrieves are "
        "honoured, anyone who can reach the port can download the images."
    ),
    remediation=(
        "Accept retrieve requests only from registered peers and only to registered destination "
        "AEs bound to host addresses."
    ),
    product_remediation=AE_POLICY,
    references=(PS34_QR, HIPAA_ACCESS, GDPR_ART32, cwe(284)),
    cwe="CWE-284",
)
SPECS = (RETRIEVE_OPEN,)

#: Said of a negotiation-only judgement when the same AC accepted our random 2.25 abstract
#: syntax (sop.CANARY_SYNTAX): such an acceptor (odil's default, CTN) accepts every context,
#: so an accepted context says nothing about the service behind it (PS3.8 §9.3.3.2).
UNVERIFIED = "unverified: the service accepts any abstract syntax (a random 2.25 UID too)"

#: PS3.4 C.4.2.1.5: C-MOVE statuses that tell how the request was judged.
MOVE_DESTINATION_UNKNOWN = 0xA801
REFUSED_NOT_AUTHORIZED = 0x0124


async def _probe_move(ctx: DicomContext) -> tuple[str, int | None]:
    called = ctx.accepted.called_aet if ctx.accepted else random_aet()
    calling = ctx.accepted.calling_aet if ctx.accepted else random_aet()
    async with ctx.association(called, calling) as client:
        if client.context_for(STUDY_ROOT_MOVE) is None:
            return "not-negotiated", None
        ts = client.context_for(STUDY_ROOT_MOVE)
        implicit = ts is not None and ts[1] == IMPLICIT_VR_LE
        # A study UID that exists nowhere (PS3.5 B.2 UUID-derived): nothing can move.
        ident = dimse.encode_identifier(
            (("QueryRetrieveLevel", "STUDY"), ("StudyInstanceUID", f"2.25.{uuid.uuid4().int}")), implicit
        )
        rsp = await client.move(STUDY_ROOT_MOVE, ident, random_aet("DST"))
    status = rsp.status
    if status == MOVE_DESTINATION_UNKNOWN:
        return "destination-unknown", status
    if status is not None and (status == 0x0000 or status in (0xFF00, 0xB000)):
        return "accepted", status
    return "refused", status


async def run(ctx: DicomContext) -> CheckOutcome:
    assoc = ctx.accepted
    if assoc is None:
        return skipped("no accepted association")
    get = [NAMES[s] for s in GET_CLASSES if s in assoc.accepted]
    move = [NAMES[s] for s in MOVE_CLASSES if s in assoc.accepted]
    any_syntax = CANARY_SYNTAX in assoc.accepted
    details: Evidence = {"get_negotiated": get, "move_negotiated": move, "verified": False}
    if not get and not move:
        return CheckOutcome(details=details)
    details["any_abstract_syntax_accepted"] = any_syntax
    severity = Severity.MEDIUM
    summary = "C-GET/C-MOVE negotiated for an unknown peer (not verified; --intrusive confirms)"
    if any_syntax:
        severity = Severity.LOW
        summary = f"C-GET/C-MOVE negotiated, {UNVERIFIED}; --intrusive tries one C-MOVE"
    elif ctx.query is not None and ctx.query.exposes_records:
        severity = Severity.HIGH
        summary = "C-GET/C-MOVE negotiated for a peer that C-FIND already answers with records"
    if ctx.options.intrusive and move:
        verdict, status = await _probe_move(ctx)
        ctx.move_status = status  # a fact for the honeypot tells (pacsradar.dicom.facts)
        details.update(
            verified=True,
            move_probe=verdict,
            move_status=f"0x{status:04X}" if status is not None else None,
        )
        if verdict in ("destination-unknown", "accepted"):
            severity = Severity.HIGH
            summary = (
                "C-MOVE from an unknown peer was refused only for its unknown destination: "
                "the server does not check who asks"
            )
        elif verdict == "refused":
            severity = Severity.LOW
            summary = "Retrieve negotiated, but C-MOVE from an unknown peer is refused"
    if get:
        # PS3.4 C.4.3: C-GET sends the matches back on the asking association itself, so unlike
        # C-MOVE it needs no registered destination AE: negotiation alone is the exposure.
        details["get_needs_no_destination"] = True
        summary += "; C-GET needs no registered destination (images return on the asking association)"
        # ... unless the service accepts any abstract syntax, so the C-GET context proves nothing
        # (issue 22), or its C-FIND answers were placeholders that describe no holdings.
        if ctx.query is not None and ctx.query.exposes_records and not any_syntax:
            severity = Severity.HIGH
    finding = RETRIEVE_OPEN.finding(
        ctx.endpoint_for_findings(),
        summary=summary,
        evidence=details,
        product=ctx.product,
        severity=severity,
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[DicomContext] = Check(
    name="dicom.retrieve",
    specs=SPECS,
    run=run,
    intrusive_step="one C-MOVE of a random, non-existent study to a random, unregistered destination AE",
)
