"""Query exposure: what a universal C-FIND returns to an unknown peer (PS3.4 C.4.1).

Study Root at STUDY level (Patient Root at PATIENT level when that is all the peer offers),
universal matching, PHI return keys plus the count attributes. We keep counts, attribute
keywords, the StudyDate year range and keyed hashes; every identifier is dropped as soon as it
is counted. At ``max_records`` we send C-CANCEL (PS3.7 §9.3.2.3) and report "at least N".

Counts are of distinct things, never of responses: some SCPs (pynetdicom's qrscp) send one
STUDY-level response per instance. Studies are distinct keyed hashes of StudyInstanceUID,
patients distinct PatientID (+ IssuerOfPatientID when sent) as two keyed hashes, linked by
:func:`pacsradar.identity.link` (the same rule as across the estate), images the
largest NumberOfStudyRelatedInstances seen per distinct study or, when the peer reports no
such count, distinct SOPInstanceUIDs from one bounded IMAGE-level query (PS3.4 C.6.2.1.4).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

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
from pacsradar.dicom.checks import placeholder
from pacsradar.dicom.checks._remediation import AE_POLICY
from pacsradar.dicom.client import DicomClient
from pacsradar.dicom.context import DicomContext, QueryFacts
from pacsradar.dicom.find import bounded_find, implicit_vr
from pacsradar.dicom.fingerprint import DicomTells, refine
from pacsradar.dicom.sop import PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from pacsradar.errors import PeerAborted, ScanError
from pacsradar.identity import PatientRecord, link, patient_record
from pacsradar.models import AttemptStatus, Evidence, Holdings, Severity
from pacsradar.phi import KeyedHasher, peer_text

QUERY_PHI = CheckSpec(
    id="DICOM-QUERY-PHI",
    title="DICOM C-FIND returns patient data to an unknown peer",
    severity=Severity.CRITICAL,
    severity_varies="medium for records without identifying attributes, low for no records",
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
SPECS = (QUERY_PHI, placeholder.QUERY_PLACEHOLDER)

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


def study_identifier() -> tuple[tuple[str, str], ...]:
    """Universal matching (PS3.4 C.2.2.2.3): every return key asked with an empty value.

    RetrieveAETitle (PS3.4 C.4.1.2.1) is not PHI; how a peer fills it tells DCMTK's dcmqrscp
    (its own AE title) from Orthanc (empty), see :func:`pacsradar.dicom.fingerprint.refine`."""
    keys = (*STUDY_PHI_KEYS, "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "RetrieveAETitle")
    return (("QueryRetrieveLevel", "STUDY"), *((k, "") for k in keys), ("NumberOfStudyRelatedInstances", ""))


def image_identifier() -> tuple[tuple[str, str], ...]:
    """Every instance, by SOPInstanceUID with its study (Study Root IMAGE level, PS3.4 C.6.2.1.4).

    Universal upper-level unique keys make this a relational query (PS3.4 C.4.1.2.2.2): a
    strictly hierarchical SCP refuses it with a failure status, which only leaves images
    unknown."""
    return (
        ("QueryRetrieveLevel", "IMAGE"),
        ("StudyInstanceUID", ""),
        ("SeriesInstanceUID", ""),
        ("SOPInstanceUID", ""),
    )


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
    "RetrieveAETitle",
)
_TAG: dict[int, str] = {dimse.DICTIONARY[kw][0]: kw for kw in _READ}
_WANTED = frozenset(_TAG)
_IMAGE_TAGS = {dimse.DICTIONARY[kw][0]: kw for kw in ("StudyInstanceUID", "SOPInstanceUID")}
_IMAGE_WANTED = frozenset(_IMAGE_TAGS)


class _Tally:
    """Counts only. Values are read, reduced to keyed hashes and dropped inside :meth:`add`."""

    def __init__(self, hasher: KeyedHasher, level: str) -> None:
        self.hasher = hasher
        self.level = level
        self.phi_keys = frozenset(STUDY_PHI_KEYS if level == "STUDY" else PATIENT_PHI_KEYS)
        self.images_key = (
            "NumberOfStudyRelatedInstances" if level == "STUDY" else "NumberOfPatientRelatedInstances"
        )
        self.records = 0
        #: responses that carried no unique key (StudyInstanceUID / PatientID): not de-duplicable
        self.without_key = 0
        #: (PatientID hash, issuer hash or "") per distinct answer (pacsradar.identity)
        self.patients: set[PatientRecord] = set()
        #: STUDY level: study hash -> largest NumberOfStudyRelatedInstances any response gave
        self.studies: dict[str, int | None] = {}
        #: PATIENT level: patient hash -> largest NumberOfPatientRelated{Studies,Instances}
        self.patient_studies: dict[PatientRecord, int] = {}
        self.patient_images: dict[PatientRecord, int] = {}
        self.images_reported = 0
        self.keywords: set[str] = set()
        self.years: set[int] = set()
        #: fingerprint tells (not PHI): was RetrieveAETitle returned, empty or set, and did the
        #: peer return the instance count attribute at all
        self.retrieve_aet: str | None = None
        self.count_attribute_returned = False

    def add(self, raw: bytes, implicit: bool) -> None:
        """Reduce one identifier to counts. Only top-level elements we asked for are looked at."""
        found = dimse.top_level_values(raw, implicit, _WANTED)
        values = {_TAG[tag]: v for tag, v in found.items()}
        self.records += 1
        self.keywords.update(k for k, v in values.items() if v and k in self.phi_keys)
        if "RetrieveAETitle" in values and self.retrieve_aet is None:
            self.retrieve_aet = peer_text(values["RetrieveAETitle"], 16)
        patient = None
        if pid := values.get("PatientID"):
            patient = patient_record(self.hasher, pid, values.get("IssuerOfPatientID"))
            if patient is not None:
                self.patients.add(patient)
        year = values.get("StudyDate", b"")[:4]
        if year.isdigit() and 1900 <= int(year) <= 2100:
            self.years.add(int(year))
        self.count_attribute_returned |= self.images_key in values
        images = _int(values.get(self.images_key))
        if images is not None:
            self.images_reported += 1
        if self.level == "STUDY":
            uid = values.get("StudyInstanceUID")
            if not uid:
                self.without_key += 1
                return
            key = self.hasher.digest(uid)
            before = self.studies.get(key)
            self.studies[key] = images if before is None else max(before, images or 0)
            return
        if patient is None:
            self.without_key += 1
            return
        studies = _int(values.get("NumberOfPatientRelatedStudies"))
        if studies is not None:
            self.patient_studies[patient] = max(self.patient_studies.get(patient, 0), studies)
        if images is not None:
            self.patient_images[patient] = max(self.patient_images.get(patient, 0), images)

    @property
    def distinct_patients(self) -> int:
        return link((p, 0) for p in self.patients).count

    @property
    def distinct_studies(self) -> int:
        if self.level == "STUDY":
            return len(self.studies)
        return sum(self.patient_studies.values())

    def reported_images(self) -> int | None:
        """Images from the count attribute, per distinct study or patient; None if never sent."""
        if not self.images_reported:
            return None
        if self.level == "STUDY":
            return sum(v for v in self.studies.values() if v is not None)
        return sum(self.patient_images.values())


class _ImageTally:
    """IMAGE level: distinct SOPInstanceUIDs, and how many of them belong to each study."""

    def __init__(self, hasher: KeyedHasher) -> None:
        self.hasher = hasher
        self.records = 0
        self.instances: set[str] = set()
        self.per_study: dict[str, int] = {}

    def add(self, raw: bytes, implicit: bool) -> None:
        values = {_IMAGE_TAGS[t]: v for t, v in dimse.top_level_values(raw, implicit, _IMAGE_WANTED).items()}
        self.records += 1
        sop = values.get("SOPInstanceUID")
        if not sop:
            return
        key = self.hasher.digest(sop)
        if key in self.instances:
            return
        self.instances.add(key)
        if study := values.get("StudyInstanceUID"):
            skey = self.hasher.digest(study)
            self.per_study[skey] = self.per_study.get(skey, 0) + 1


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
def _encoded_identifier(level: str, implicit: bool) -> bytes:
    keys = {"STUDY": study_identifier, "PATIENT": patient_identifier, "IMAGE": image_identifier}[level]()
    return dimse.encode_identifier(keys, implicit)


async def _query(
    session: DicomClient,
    sop: str,
    level: str,
    ctx: DicomContext,
    add: Callable[[bytes, bool], None],
    records: Callable[[], int],
) -> tuple[int | None, bool]:
    """One C-FIND; every pending identifier goes to ``add``. Returns (final status, truncated)."""
    identifier = _encoded_identifier(level, implicit_vr(session, sop))
    return await bounded_find(session, sop, identifier, add, records, ctx.options.max_records)


async def _count_images(ctx: DicomContext, session: DicomClient) -> tuple[_ImageTally | None, str | None]:
    """Distinct SOPInstanceUIDs, for a peer that returned no NumberOfStudyRelatedInstances.

    Returns (tally, None) when the peer answered with instances, else (None, why not)."""
    images = _ImageTally(ctx.options.hasher)
    try:
        status, truncated = await _query(
            session, STUDY_ROOT_FIND, "IMAGE", ctx, images.add, lambda: images.records
        )
    except PeerAborted:
        ctx.session = None
        return None, "IMAGE-level C-FIND answered with A-ABORT"
    except ScanError as exc:
        ctx.session = None
        return None, f"IMAGE-level C-FIND failed: {exc}"
    if truncated and status is None:
        ctx.session = None
    if not images.instances:
        return None, f"IMAGE-level C-FIND returned no instances (status {_status_hex(status)})"
    return images, None


def _status_hex(status: int | None) -> str | None:
    return f"0x{status:04X}" if status is not None else None


def _tells(ctx: DicomContext, *, aborted: bool, tally: _Tally | None) -> DicomTells:
    first = ctx.first
    return DicomTells(
        random_called_aet_accepted=ctx.accepted is not None and ctx.guessed_aet is None,
        find_accepted=bool(ctx.accepted and STUDY_ROOT_FIND in ctx.accepted.accepted),
        storage_accepted=bool(ctx.accepted and any(".5.1.4.1.1." in uid for uid in ctx.accepted.accepted)),
        find_refused_with_abort=aborted,
        retrieve_aet=tally.retrieve_aet if tally and tally.records else None,
        count_attribute_returned=tally.count_attribute_returned if tally and tally.records else None,
        rejected=first is not None and first.kind.value == "rejected",
    )


def _refine(ctx: DicomContext, tells: DicomTells) -> None:
    if ctx.fingerprint is not None:
        ctx.fingerprint = refine(ctx.fingerprint, tells)


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
        _refine(ctx, _tells(ctx, aborted=False, tally=None))
        return CheckOutcome(details={"find_negotiated": False})
    tally = _Tally(ctx.options.hasher, level)
    try:
        status, truncated = await _query(session, sop, level, ctx, tally.add, lambda: tally.records)
    except PeerAborted:
        # Orthanc (DicomAlwaysAllowFind false) answers an unknown peer's C-FIND with A-ABORT:
        # a refusal, not an error. The association is gone; later checks open their own.
        ctx.session = None
        _refine(ctx, _tells(ctx, aborted=True, tally=None))
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
    _refine(ctx, _tells(ctx, aborted=False, tally=tally))
    refused = tally.records == 0 and status not in (0x0000, 0xFE00, None)
    images = tally.reported_images()
    images_basis: str | None = None
    if images is not None:
        images_basis = f"{tally.images_key} per distinct {level.lower()}"
    images_note: str | None = None
    per_study_images = dict(tally.studies)
    if images is None and level == "STUDY" and tally.studies and ctx.session is not None:
        image_tally, images_note = await _count_images(ctx, ctx.session)
        if image_tally is not None:
            images = len(image_tally.instances)
            images_basis = "distinct SOPInstanceUIDs (IMAGE-level C-FIND)"
            truncated = truncated or image_tally.records >= ctx.options.max_records
            per_study_images = {k: image_tally.per_study.get(k) for k in tally.studies}
    patients = tally.distinct_patients
    studies = tally.distinct_studies
    facts = QueryFacts(
        level=level,
        records=tally.records,
        patients=patients,
        images=images,
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
    # CTN simple_storage: canned records, no unique key, whatever is asked (placeholder.py)
    unkeyed = placeholder.unkeyed(tally.records, tally.without_key) and not truncated
    if unkeyed and (canned := await placeholder.outcome(ctx, sop, level, details, facts.phi_keywords)):
        return canned
    # Every count below is of distinct keyed hashes, never of responses (module docstring).
    distinct = len(tally.studies) if level == "STUDY" else len(tally.patients)
    duplicates = tally.records - tally.without_key - distinct
    evidence: Evidence = {
        "query_level": level,
        "patients": patients,
        "studies": studies,
        "images": images,
        "records": tally.records,
        "duplicate_records": max(duplicates, 0),
        "records_without_unique_key": tally.without_key,
        "patients_basis": "distinct PatientID (+ IssuerOfPatientID)",
        "studies_basis": "distinct StudyInstanceUID"
        if level == "STUDY"
        else "NumberOfPatientRelatedStudies per distinct patient",
        "images_basis": images_basis,
        "images_reported_by_records": tally.images_reported,
        "phi_attributes": list(facts.phi_keywords),
        "phi_attribute_count": len(facts.phi_keywords),
        "study_year_min": facts.year_min,
        "study_year_max": facts.year_max,
        "truncated": truncated,
        "max_records": ctx.options.max_records,
    }
    if images_note:
        evidence["images_note"] = images_note
    details.update(evidence)
    bound = "≥ " if truncated else ""
    dup = f"; {evidence['duplicate_records']} duplicate responses not counted" if duplicates > 0 else ""
    if tally.without_key:
        key = "StudyInstanceUID" if level == "STUDY" else "PatientID"
        dup += f"; {tally.without_key} records carried no {key} and cannot be counted as distinct"
    if tally.records == 0:
        summary = "C-FIND permitted for an unknown peer; it returned no records"
        severity = Severity.LOW
    elif facts.phi_keywords:
        summary = (
            f"C-FIND returned {bound}{tally.records} {level.lower()} records: {bound}{patients} distinct "
            f"patients, {bound}{studies} studies, {bound}{images if images is not None else '?'} images"
            f"{dup}; {len(facts.phi_keywords)} identifying attributes"
        )
        severity = Severity.CRITICAL
    else:
        summary = f"C-FIND returned {bound}{tally.records} records without identifying attributes{dup}"
        severity = Severity.MEDIUM
    holdings = Holdings(
        patient_records=tuple(sorted(tally.patients)),
        source="archive",
        studies=tuple(per_study_images),
        study_images=tuple(-1 if v is None else v for v in per_study_images.values()),
        truncated=truncated,
    )
    finding = QUERY_PHI.finding(
        ctx.endpoint_for_findings(),
        summary=summary,
        evidence=evidence,
        product=ctx.product,
        severity=severity,
        holdings=holdings if tally.records else None,
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
