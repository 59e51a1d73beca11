"""Honeypot suspicion: does this DICOM service behave like a deception sensor, not an archive?

Runs last. The score is a pure function of the facts the earlier probes recorded
(:mod:`pacsradar.dicom.facts`; the tells are :mod:`pacsradar.dicom.honeypot.tells`). It sends
one request of its own, on the association the query check left open: a C-FIND for a random
PatientID that cannot exist (PS3.4 C.2.2.2.1 single value matching), read with a 64 KiB bound
per response and abandoned at the first match. No data is written, nothing is moved.

Above ``--honeypot-threshold`` the auditor marks every finding of the endpoint
(:func:`pacsradar.dicom.honeypot.score.mark_suspects`), and the headline exposure leaves them out.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from pacsradar.checks import Check, CheckOutcome, CheckSpec, Reference, skipped
from pacsradar.dicom import dimse, facts
from pacsradar.dicom.client import IMPLICIT_VR_LE, DicomClient
from pacsradar.dicom.context import DicomContext
from pacsradar.dicom.honeypot.score import CHECK_ID, SUSPECTED, score
from pacsradar.dicom.sop import PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from pacsradar.errors import ProtocolError, ScanError, SizeLimitError
from pacsradar.models import Evidence, Severity

HONEYPOT_SUSPECT = CheckSpec(
    id=CHECK_ID,
    title="DICOM service looks like a honeypot",
    severity=Severity.INFO,
    category="dicom",
    description=(
        "The service answered in ways no real DICOM implementation does and public honeypots "
        "(dicompot, DICOMHawk, the fkie-cad honeypots DICOM server) do, or its toolkit's "
        "behaviour contradicts the identity it claims. The score (0-100) lists each tell with "
        "its weight and what was seen."
    ),
    remediation=(
        "Verify out of band (asset inventory, the owner) before acting; do not report a "
        "suspected honeypot as a breach. If it is yours, it is working as intended."
    ),
    references=(
        Reference(
            title="DICOM PS3.7 D.3.3.2: Implementation Identification Notification",
            url="https://dicom.nema.org/medical/dicom/current/output/html/part07.html#sect_D.3.3.2",
        ),
        Reference(
            title="DICOM PS3.4 C.4.1: C-FIND operation",
            url="https://dicom.nema.org/medical/dicom/current/output/html/part04.html#sect_C.4.1",
        ),
    ),
)
SPECS = (HONEYPOT_SUSPECT,)


def random_patient_identifier(level: str, implicit: bool) -> bytes:
    """QueryRetrieveLevel, a random PatientID (LO, PS3.5 Table 6.2-1) and one unique key."""
    pid = "PR" + secrets.token_hex(12).upper()
    keys = [("QueryRetrieveLevel", level), ("PatientID", pid)]
    if level == "STUDY":
        keys.append(("StudyInstanceUID", ""))
    return dimse.encode_identifier(keys, implicit)


async def probe_random_patient(session: DicomClient) -> None:
    """One C-FIND for a PatientID that cannot exist; the shape is recorded by the context."""
    accepted = session.assoc.accepted if session.assoc else {}
    if STUDY_ROOT_FIND in accepted:
        sop, level = STUDY_ROOT_FIND, "STUDY"
    elif PATIENT_ROOT_FIND in accepted:
        sop, level = PATIENT_ROOT_FIND, "PATIENT"
    else:
        return
    identifier = random_patient_identifier(level, accepted[sop][1] == IMPLICIT_VR_LE)
    session.max_message_bytes = facts.IDENTIFIER_BOUND
    read = 0
    finished = False
    responses = session.find(sop, identifier)
    try:
        async for rsp in responses:
            read += 1
            if rsp.status not in (0xFF00, 0xFF01):
                finished = True  # the normal answer of a real archive: no match, final status
            else:
                break  # one match for a PatientID nobody has is all we need to know
    finally:
        await responses.aclose()
    if not finished:
        # Abandoned mid-answer: abort rather than cancel and drain (this check runs last).
        await abort_and_let_peer_close(session)


#: After our A-ABORT, what we read (and drop) while the peer closes: at most this, this long.
ABORT_DRAIN_BYTES = 1 << 20
ABORT_DRAIN_SECONDS = 1.0


async def abort_and_let_peer_close(session: DicomClient) -> None:
    """A-ABORT (PS3.8 §9.3.8), then read until the peer closes, bounded: the peer gets to
    close first, as after an A-ABORT it should (pynetdicom leaks its socket otherwise)."""
    await session.abort()
    drained = 0
    with contextlib.suppress(Exception):
        async with asyncio.timeout(ABORT_DRAIN_SECONDS):
            while drained < ABORT_DRAIN_BYTES:
                drained += len(await session.stream.read_exactly(4096))


async def run(ctx: DicomContext) -> CheckOutcome:
    if ctx.first is None:
        return skipped("no DICOM association answer to judge")
    session = ctx.session
    probe_error: str | None = None
    if session is not None and ctx.query is not None:
        try:
            await probe_random_patient(session)
        except SizeLimitError:
            # A response past the bound: image data where an identifier belongs.
            if ctx.finds:
                ctx.finds[-1].oversized = True
            await abort_and_let_peer_close(session)
        except (ProtocolError, ScanError) as exc:
            probe_error = type(exc).__name__
            await abort_and_let_peer_close(session)
        ctx.session = None
    observed = facts.build(ctx.answers, ctx.finds, move_status=ctx.move_status, tls=ctx.tls is not None)
    result = score(observed)
    threshold = ctx.options.honeypot_threshold
    suspected = result.score >= threshold
    details: Evidence = {
        "score": result.score,
        "threshold": threshold,
        SUSPECTED: suspected,
        "tells": [t.line for t in result.tells],
        "associations": len(observed.associations),
        "finds": len(observed.finds),
    }
    if observed.accepted is not None and observed.accepted.ac_digest:
        # For cross-scan tells (mass-deployed sensors send byte-identical ACs): a digest of
        # the AC with the echoed AE titles blanked, and of the keyed PatientID hash set.
        details["ac_digest"] = observed.accepted.ac_digest
    universal = observed.finds_for("universal")
    if universal and universal[0].patient_set_digest:
        details["patient_set_digest"] = universal[0].patient_set_digest
    if result.uncounted:
        details["uncounted_tells"] = [t.line for t in result.uncounted]
    if probe_error:
        details["probe_error"] = probe_error
    if not result.tells:
        return CheckOutcome(details=details)
    verdict = "looks like a honeypot" if suspected else "shows honeypot tells"
    summary = f"Service {verdict}: score {result.score}/100 from {len(result.tells)} tell(s)"
    finding = HONEYPOT_SUSPECT.finding(
        ctx.endpoint_for_findings(), summary=summary, evidence=details, product=ctx.product
    )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[DicomContext] = Check(name="dicom.honeypot", specs=SPECS, run=run)
