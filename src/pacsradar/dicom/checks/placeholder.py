"""Placeholder C-FIND answers: records without unique keys, the same whatever is asked.

Part of the query check (``dicom.query``), in its own module. Some real SCPs answer every C-FIND
with a fixed set of canned records: Debian CTN's ``simple_storage`` returns the same four
records, with PatientName and PatientBirthDate but no StudyInstanceUID or PatientID, to any
query. Such records carry no unique key (PS3.4 C.6.2.1.1: StudyInstanceUID is the unique key
of the STUDY level, PatientID of the PATIENT level) and do not depend on the query, so they
describe no holdings: nothing can be counted from them, and they are not an exposure of
patient data. They are reported here at low severity with every count 0.

Two facts decide it, never one alone: no record of the universal query carried the level's
unique key, *and* records come back for a PatientID that cannot exist (PS3.4 C.2.2.2.1 single
value matching, which a real archive answers with no match). Records without keys that do
depend on the query stay a DICOM-QUERY-PHI finding.
"""

from __future__ import annotations

import dataclasses
import secrets

from pacsradar.checks import PS34_QR, CheckOutcome, CheckSpec
from pacsradar.dicom import dimse
from pacsradar.dicom.client import IMPLICIT_VR_LE, DicomClient
from pacsradar.dicom.context import DicomContext
from pacsradar.errors import ScanError
from pacsradar.models import Evidence, Severity

QUERY_PLACEHOLDER = CheckSpec(
    id="DICOM-QUERY-PLACEHOLDER",
    title="DICOM C-FIND answers an unknown peer with placeholder records",
    severity=Severity.LOW,
    category="dicom",
    description=(
        "A C-FIND from an unregistered AE title was answered, but only with canned records: "
        "none carries the level's unique key (StudyInstanceUID or PatientID), and the same "
        "records come back for a PatientID that cannot exist. They describe no holdings, so "
        "no patient or study is counted; the service still answers queries from anyone."
    ),
    remediation=(
        "Allow C-FIND only for registered peers. If this is a test or demonstration SCP "
        "(e.g. CTN simple_storage), keep it off production networks."
    ),
    references=(PS34_QR,),
    cwe="CWE-284",
)

PENDING = (0xFF00, 0xFF01)
#: Responses read to a query that must match nothing; past this we stop reading and abort.
READ_BOUND = 64


def unkeyed(records: int, without_key: int) -> bool:
    """True when there were records and none carried the level's unique key."""
    return records > 0 and without_key == records


def random_patient_identifier(level: str, implicit: bool) -> bytes:
    """A PatientID no archive holds (random, LO fits 64 chars) plus the level's unique key."""
    keys: list[tuple[str, str]] = [("QueryRetrieveLevel", level), ("PatientID", "PR" + secrets.token_hex(12))]
    keys.append(("StudyInstanceUID", "") if level == "STUDY" else ("PatientName", ""))
    return dimse.encode_identifier(keys, implicit)


async def matches_for_random_patient(session: DicomClient, sop: str, level: str) -> int | None:
    """How many records the peer returns for a random PatientID; None if it could not be asked.

    The association is aborted (and must not be reused) when None is returned or when the
    peer sent more than :data:`READ_BOUND` responses."""
    if session.assoc is None or sop not in session.assoc.accepted:
        return None
    implicit = session.assoc.accepted[sop][1] == IMPLICIT_VR_LE
    matches = 0
    finished = False
    try:
        responses = session.find(sop, random_patient_identifier(level, implicit))
        try:
            async for rsp in responses:
                if rsp.status in PENDING:
                    matches += 1
                    if matches > READ_BOUND:
                        break
                else:
                    finished = True
        finally:
            await responses.aclose()
    except ScanError:
        await session.abort()
        return None
    if not finished:
        await session.abort()
    return matches


def summary(records: int, level: str, random_matches: int) -> str:
    key = "StudyInstanceUID" if level == "STUDY" else "PatientID"
    return (
        f"C-FIND returned {records} placeholder records without {key}; {random_matches} came back "
        "for a PatientID that cannot exist: 0 patients, 0 studies counted"
    )


async def outcome(
    ctx: DicomContext, sop: str, level: str, details: Evidence, phi_keywords: tuple[str, ...]
) -> CheckOutcome | None:
    """The placeholder outcome of a query whose records all lacked the unique key, or None
    when the records do depend on the query (then they stay DICOM-QUERY-PHI)."""
    session = ctx.session
    records = details.get("records")
    if session is None or ctx.query is None or not isinstance(records, int):
        return None
    random_matches = await matches_for_random_patient(session, sop, level)
    if random_matches is None or random_matches > READ_BOUND:
        ctx.session = None  # aborted: later checks open their own
    if not random_matches:
        return None  # unknown, or a real "no match": the records may be real
    ctx.query = dataclasses.replace(ctx.query, placeholder=True)
    evidence: Evidence = {
        "query_level": level,
        "placeholder": True,
        "records": records,
        "records_without_unique_key": records,
        "random_patient_matches": random_matches,
        "patients": 0,
        "studies": 0,
        "images": 0,
        "phi_attributes": list(phi_keywords),
    }
    details.update(evidence)
    finding = QUERY_PLACEHOLDER.finding(
        ctx.endpoint_for_findings(),
        summary=summary(records, level, random_matches),
        evidence=evidence,
        product=ctx.product,
    )
    return CheckOutcome(details=details, findings=(finding,))


__all__ = [
    "QUERY_PLACEHOLDER",
    "matches_for_random_patient",
    "outcome",
    "random_patient_identifier",
    "summary",
    "unkeyed",
]
