"""Query exposure: what a universal C-FIND returns to an unknown peer (PS3.4 C.4.1).

Study Root at STUDY level (Patient Root at PATIENT level when that is all the peer offers),
universal matching, PHI return keys plus the count attributes. We keep counts, attribute
keywords, the StudyDate year range and keyed hashes of PatientID (to count distinct patients);
every identifier is dropped as soon as it is counted. At ``max_records`` we send C-CANCEL
(PS3.7 §9.3.2.3) and report "at least N".
"""

from __future__ import annotations

import asyncio
import functools

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_ACCESS,
    PS34_QR,
    PS315_ANNEX_E,
    Check,
    CheckOutcome,
    CheckSpec,
    cwe,
    skipped,
)
from pacsradar.dicom import dimse
from pacsradar.dicom.checks._remediation import AE_POLICY
from pacsradar.dicom.client import IMPLICIT_VR_LE, DicomClient
from pacsradar.dicom.context import DicomContext, QueryFacts
from pacsradar.dicom.sop import PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from pacsradar.errors import PeerAborted, ProtocolError, ReadTimeout
from pacsradar.models import AttemptStatus, Evidence, Severity
from pacsradar.phi import KeyedHasher

QUERY_PHI = CheckSpec(
    id="DICOM-QUERY-PHI",
    title="DICOM C-FIND returns patient data to an unknown peer",
    severity=Severity.CRITICAL,
    category="dicom",
    description=(
        "A universal C-FIND from an unregistered AE title returned study records with identifying "
        "attributes (DICOM PS3.15 Annex E): anyone who can reach the port can list the patients."
    ),
    remediation=(
        "Allow C-FIND only for registered peers, enforce AE titles and host addresses, put the "
        "service behind a VPN or firewall, and use DICOM TLS with client certificates."
    ),
    product_remediation=AE_POLICY,
    references=(PS34_QR, PS315_ANNEX_E, HIPAA_ACCESS, GDPR_ART32, cwe(359)),
    cwe="CWE-359",
)
SPECS = (QUERY_PHI,)

#: Return keys (PS3.4 C.6.2.1.2 Study Root STUDY level; C.6.1.1.2 Patient Root PATIENT level)
#: that PS3.15 Annex E Table E.1-1 lists as identifying, asked with zero length (universal).
STUDY_PHI_KEYS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "OtherPatientIDs",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyInstanceUID",
    "ReferringPhysicianName",
    "StudyDescription",
    "InstitutionName",
)
PATIENT_PHI_KEYS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDs",
)
# How many more responses we read after C-CANCEL before giving up and aborting.
CANCEL_DRAIN = 64
PENDING = (0xFF00, 0xFF01)


def study_identifier() -> tuple[tuple[str, str], ...]:
    """Universal matching (PS3.4 C.2.2.2.3): every return key asked with an empty value."""
    keys = (*STUDY_PHI_KEYS, "ModalitiesInStudy", "NumberOfStudyRelatedSeries")
    return (("QueryRetrieveLevel", "STUDY"), *((k, "") for k in keys), ("NumberOfStudyRelatedInstances", ""))


def patient_identifier() -> tuple[tuple[str, str], ...]:
    keys = (*PATIENT_PHI_KEYS, "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances")
    return (("QueryRetrieveLevel", "PATIENT"), *((k, "") for k in keys))


#: Tags read from each response (PS3.6 data dictionary), found by tag so that the raw bytes of
#: an identifier are walked once, without building a data set.
_READ = (
    *STUDY_PHI_KEYS,
    *PATIENT_PHI_KEYS,
    "NumberOfStudyRelatedInstances",
    "NumberOfPatientRelatedInstances",
    "NumberOfPatientRelatedStudies",
)
_TAG: dict[int, str] = {dimse.DICTIONARY[kw][0]: kw for kw in _READ}
_WANTED = frozenset(_TAG)


class _Tally:
    """Counts only. Values are read, reduced and dropped inside :meth:`add`."""

    def __init__(self, hasher: KeyedHasher, level: str) -> None:
        self.hasher = hasher
        self.level = level
        self.phi_keys = frozenset(STUDY_PHI_KEYS if level == "STUDY" else PATIENT_PHI_KEYS)
        self.images_key = (
            "NumberOfStudyRelatedInstances" if level == "STUDY" else "NumberOfPatientRelatedInstances"
        )
        self.records = 0
        self.patients: set[str] = set()
        self.images = 0
        self.images_reported = 0
        self.studies_from_patients = 0
        self.keywords: set[str] = set()
        self.years: list[int] = []

    def add(self, raw: bytes, implicit: bool) -> None:
        """Reduce one identifier to counts. Only top-level elements we asked for are looked at."""
        values = {_TAG[tag]: v for tag, v in dimse.top_level_values(raw, implicit, _WANTED).items()}
        self.records += 1
        self.keywords.update(k for k, v in values.items() if v and k in self.phi_keys)
        if pid := values.get("PatientID"):
            self.patients.add(self.hasher.digest(pid))
        year = values.get("StudyDate", b"")[:4]
        if year.isdigit() and 1900 <= int(year) <= 2100:
            self.years.append(int(year))
        images = _int(values.get(self.images_key))
        if images is not None:
            self.images += images
            self.images_reported += 1
        if self.level == "PATIENT":
            self.studies_from_patients += _int(values.get("NumberOfPatientRelatedStudies")) or 0


def _int(raw: bytes | None) -> int | None:
    """An IS value (PS3.5 Table 6.2-1), bounded; anything else is 'not reported'."""
    if not raw or len(raw) > 12:
        return None
    try:
        value = int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if 0 <= value < 10**9 else None


@functools.cache
def _encoded_identifier(level: str, transfer_syntax: str) -> bytes:
    keys = study_identifier() if level == "STUDY" else patient_identifier()
    return dimse.encode_identifier(keys, transfer_syntax == IMPLICIT_VR_LE)


async def _query(
    session: DicomClient, sop: str, level: str, ctx: DicomContext
) -> tuple[_Tally, int | None, bool]:
    tally = _Tally(ctx.options.hasher, level)
    ts = session.assoc.accepted[sop][1] if session.assoc else IMPLICIT_VR_LE
    implicit = ts == IMPLICIT_VR_LE
    identifier = _encoded_identifier(level, ts)
    message_id = session.next_message_id()
    final_status: int | None = None
    truncated = False
    responses = session.find(sop, identifier, message_id=message_id)
    try:
        async for rsp in responses:
            status = rsp.status
            if status in PENDING:
                if rsp.dataset:
                    tally.add(rsp.dataset, implicit)
                if tally.records >= ctx.options.max_records and not truncated:
                    truncated = True
                    await session.cancel(sop, message_id)
                    break
            else:
                final_status = status
    finally:
        await responses.aclose()
    if truncated:
        final_status = await _drain_after_cancel(session)
    return tally, final_status, truncated


async def _drain_after_cancel(session: DicomClient) -> int | None:
    """Read what the peer still sends after C-CANCEL; a peer that ignores it gets A-ABORT."""
    try:
        async with asyncio.timeout(2.0):
            for _ in range(CANCEL_DRAIN):
                rsp = await session.receive()
                if rsp.status not in PENDING:
                    return rsp.status
    except (TimeoutError, ReadTimeout, ProtocolError):
        pass
    await session.abort()
    return None  # the peer ignored C-CANCEL (or broke): the association was aborted


def _status_hex(status: int | None) -> str | None:
    return f"0x{status:04X}" if status is not None else None


async def run(ctx: DicomContext) -> CheckOutcome:
    session = ctx.session
    if session is None or session.assoc is None:
        return skipped("no accepted association")
    accepted = session.assoc.accepted
    if STUDY_ROOT_FIND in accepted:
        sop, level = STUDY_ROOT_FIND, "STUDY"
    elif PATIENT_ROOT_FIND in accepted:
        sop, level = PATIENT_ROOT_FIND, "PATIENT"
    else:
        return CheckOutcome(details={"find_negotiated": False})
    try:
        tally, status, truncated = await _query(session, sop, level, ctx)
    except PeerAborted:
        # Orthanc (DicomAlwaysAllowFind false) answers an unknown peer's C-FIND with A-ABORT:
        # a refusal, not an error. The association is gone; later checks open their own.
        ctx.session = None
        details: Evidence = {
            "find_negotiated": True,
            "level": level,
            "refused": True,
            "refusal": "A-ABORT",
            "records": 0,
        }
        return CheckOutcome(details=details)
    if truncated and status is None:
        ctx.session = None  # we aborted it; later checks open their own
    refused = tally.records == 0 and status not in (0x0000, 0xFE00, None)
    studies = tally.records if level == "STUDY" else tally.studies_from_patients
    patients = len(tally.patients) if level == "STUDY" else tally.records
    facts = QueryFacts(
        level=level,
        records=tally.records,
        patients=patients,
        images=tally.images if tally.images_reported else None,
        phi_keywords=tuple(sorted(tally.keywords)),
        year_min=min(tally.years) if tally.years else None,
        year_max=max(tally.years) if tally.years else None,
        truncated=truncated,
        status=status,
    )
    ctx.query = facts
    details = {
        "find_negotiated": True,
        "level": level,
        "final_status": _status_hex(status),
        "refused": refused,
        "records": tally.records,
        "truncated": truncated,
    }
    if refused:
        # Orthanc's default: association accepted, C-FIND answered with a failure status.
        return CheckOutcome(details=details)
    evidence: Evidence = {
        "query_level": level,
        "patients": patients,
        "studies": studies,
        "images": facts.images,
        "images_reported_by_records": tally.images_reported,
        "phi_attributes": list(facts.phi_keywords),
        "phi_attribute_count": len(facts.phi_keywords),
        "study_year_min": facts.year_min,
        "study_year_max": facts.year_max,
        "truncated": truncated,
        "max_records": ctx.options.max_records,
    }
    details.update(evidence)
    bound = "≥ " if truncated else ""
    if tally.records == 0:
        summary = "C-FIND permitted for an unknown peer; it returned no records"
        severity = Severity.LOW
    elif facts.phi_keywords:
        summary = (
            f"C-FIND returned {bound}{tally.records} {level.lower()} records: {bound}{patients} patients, "
            f"{bound}{studies} studies, {bound}{facts.images if facts.images is not None else '?'} images; "
            f"{len(facts.phi_keywords)} identifying attributes"
        )
        severity = Severity.CRITICAL
    else:
        summary = f"C-FIND returned {bound}{tally.records} records without identifying attributes"
        severity = Severity.MEDIUM
    finding = QUERY_PHI.finding(
        ctx.endpoint_for_findings(),
        summary=summary,
        evidence=evidence,
        product=ctx.product,
        severity=severity,
    )
    if truncated and status is None:
        # Counts up to the bound are real; the peer's refusal to stop is an error worth seeing.
        return CheckOutcome(
            details=details,
            findings=(finding,),
            status=AttemptStatus.ERROR,
            reason="peer kept sending C-FIND responses after C-CANCEL; association aborted",
        )
    return CheckOutcome(details=details, findings=(finding,))


CHECK: Check[DicomContext] = Check(name="dicom.query", specs=SPECS, run=run)
