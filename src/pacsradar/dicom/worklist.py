"""Scheduled work as frozen facts: what a Modality Worklist (PS3.4 Annex K) or Unified Procedure
Step (PS3.4 Annex CC) C-FIND told an unknown peer, reduced to counts, keyed hashes, attribute
keywords and date shapes as soon as each response arrives. No value is kept.

The probe (:func:`probe`) sends one universal C-FIND over an accepted association, bounded by
``--max-records`` with C-CANCEL at the bound (PS3.7 §9.3.2.3), the same way the archive query
does; the checks (``dicom.worklist``, ``dicom.ups``) judge the facts with pure functions.

Patients are keyed hashes of PatientID (+ IssuerOfPatientID), the same identity the archive
query counts (:meth:`pacsradar.phi.KeyedHasher.patient`), so the estate headline counts a patient
scheduled in a worklist and stored in an archive once. Dates are kept only as a year range, the
number of distinct scheduled days and the span in days (HIPAA Safe Harbor keeps no date element
finer than the year that relates to an individual).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from pacsradar.dicom import dimse
from pacsradar.dicom.client import DicomClient
from pacsradar.dicom.find import bounded_find, implicit_vr
from pacsradar.errors import PeerAborted
from pacsradar.identity import PatientRecord, link, patient_record
from pacsradar.phi import KeyedHasher

#: PS3.4 K.6.1.2.2 return keys asked with zero length (universal matching, C.2.2.2.3); every one
#: but SpecificCharacterSet and Modality is listed identifying in PS3.15 Annex E Table E.1-1.
MWL_TOP = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyInstanceUID",
    "RequestingPhysician",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "AdmissionID",
)
#: Scheduled Procedure Step Sequence item keys (PS3.4 Table K.6-1)
MWL_STEP = (
    "Modality",
    "ScheduledStationAETitle",
    "ScheduledStationName",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
)
#: UPS C-FIND return keys at the top level (PS3.4 Table CC.2.5-3)
UPS_TOP = (
    "SOPInstanceUID",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "ProcedureStepState",
    "ProcedureStepLabel",
    "ScheduledProcedureStepStartDateTime",
)
#: Keys that are not identifying (PS3.15 Annex E lists none of them)
NOT_IDENTIFYING = frozenset({"Modality", "ProcedureStepState"})

_MWL_WANTED = frozenset(dimse.DICTIONARY[k][0] for k in MWL_TOP)
_STEP_WANTED = frozenset(dimse.DICTIONARY[k][0] for k in MWL_STEP)
_UPS_WANTED = frozenset(dimse.DICTIONARY[k][0] for k in UPS_TOP)
_KEYWORD = {dimse.DICTIONARY[k][0]: k for k in (*MWL_TOP, *MWL_STEP, *UPS_TOP)}
_SPS = dimse.DICTIONARY["ScheduledProcedureStepSequence"][0]
#: PS3.3 C.7.3.1.1.1 Modality defined terms: only these codes are reported (any other value a
#: peer puts in Modality counts as "OTHER"), so no free text of a peer's ever reaches a report.
MODALITY_TERMS = frozenset(
    [
        "AR",
        "ASMT",
        "AU",
        "BDUS",
        "BI",
        "BMD",
        "CR",
        "CT",
        "CTPROTOCOL",
        "DG",
        "DMS",
        "DOC",
        "DX",
        "ECG",
        "EEG",
        "EMG",
        "EOG",
        "EPS",
        "ES",
        "FID",
        "GM",
        "HC",
        "HD",
        "IO",
        "IOL",
        "IVOCT",
        "IVUS",
        "KER",
        "KO",
        "LEN",
        "LS",
        "M3D",
        "MG",
        "MR",
        "NM",
        "OAM",
        "OCT",
        "OP",
        "OPM",
        "OPT",
        "OPTBSV",
        "OPTENF",
        "OPV",
        "OSS",
        "OT",
        "PLAN",
        "POS",
        "PR",
        "PT",
        "PX",
        "REG",
        "RESP",
        "RF",
        "RG",
        "RTDOSE",
        "RTIMAGE",
        "RTINTENT",
        "RTPLAN",
        "RTRAD",
        "RTRECORD",
        "RTSEGANN",
        "RTSTRUCT",
        "RWV",
        "SEG",
        "SM",
        "SMR",
        "SR",
        "SRF",
        "STAIN",
        "TEXTUREMAP",
        "TG",
        "US",
        "VA",
        "XA",
        "XAPROTOCOL",
        "XC",
    ]
)
MAX_MODALITIES = 16


@dataclass(frozen=True)
class WorklistFacts:
    """One scheduled-work C-FIND, as facts. ``model`` is "MWL" or "UPS"."""

    model: str
    sop_class: str
    records: int = 0
    #: keyed patient records (pacsradar.identity: PatientID and issuer hashed apart), sorted;
    #: never the IDs
    patients: tuple[PatientRecord, ...] = ()
    records_without_patient: int = 0
    #: PS3.15 Annex E keywords that came back with a value, sorted
    identifying: tuple[str, ...] = ()
    #: modality codes (CS, PS3.3 C.7.3.1.1.1) scheduled, sorted; not PHI
    modalities: tuple[str, ...] = ()
    #: distinct Scheduled Station AE Titles (counted by keyed hash; titles are not kept)
    stations: int = 0
    year_min: int | None = None
    year_max: int | None = None
    scheduled_days: int = 0
    span_days: int | None = None
    truncated: bool = False
    final_status: int | None = None
    #: "A-ABORT" when the peer refused by aborting, else None
    refusal: str | None = None
    #: the peer went on sending after C-CANCEL and was aborted
    cancel_ignored: bool = False

    @property
    def distinct_patients(self) -> int:
        """Patients told apart by the estate's own linking rule (pacsradar.identity.link)."""
        return link((p, 0) for p in self.patients).count

    @property
    def refused(self) -> bool:
        return self.refusal is not None or (
            self.records == 0 and self.final_status not in (0x0000, 0xFE00, None)
        )


class Tally:
    """Counts only: values are hashed or reduced to shapes inside :meth:`add` and dropped."""

    def __init__(self, model: str, hasher: KeyedHasher) -> None:
        self.model = model
        self.hasher = hasher
        self.records = 0
        self.without_patient = 0
        self.patients: set[PatientRecord] = set()
        self.keywords: set[str] = set()
        self.modalities: set[str] = set()
        self.stations: set[str] = set()
        self.days: set[date] = set()

    def add(self, raw: bytes, implicit: bool) -> None:
        self.records += 1
        wanted = _MWL_WANTED if self.model == "MWL" else _UPS_WANTED
        top = {_KEYWORD[t]: v for t, v in dimse.top_level_values(raw, implicit, wanted).items()}
        steps = []
        if self.model == "MWL":
            for item in dimse.sequence_items(raw, implicit, _SPS, _STEP_WANTED, max_items=16):
                steps.append({_KEYWORD[t]: v for t, v in item.items()})
        for values in (top, *steps):
            self.keywords.update(k for k, v in values.items() if v and k not in NOT_IDENTIFYING)
        pid = top.get("PatientID")
        record = patient_record(self.hasher, pid, top.get("IssuerOfPatientID")) if pid else None
        if record is not None:
            self.patients.add(record)
        else:
            self.without_patient += 1
        self._day(top.get("ScheduledProcedureStepStartDateTime"))
        for step in steps:
            self._day(step.get("ScheduledProcedureStepStartDate"))
            if (modality := step.get("Modality")) and len(self.modalities) < MAX_MODALITIES:
                code = modality.decode("ascii", "replace")
                self.modalities.add(code if code in MODALITY_TERMS else "OTHER")
            # AE is multi-valued (PS3.5 §6.4: backslash); each title is one station.
            for aet in step.get("ScheduledStationAETitle", b"").split(b"\\")[:16]:
                if aet.strip():
                    self.stations.add(self.hasher.digest(aet.strip()))

    def _day(self, raw: bytes | None) -> None:
        if not raw or len(raw) < 8 or not raw[:8].isdigit():
            return
        try:
            day = date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
        except ValueError:
            return
        if 1900 <= day.year <= 2100 and len(self.days) < 4096:
            self.days.add(day)

    def facts(self, sop: str, status: int | None, truncated: bool, *, cancel_ignored: bool) -> WorklistFacts:
        days = sorted(self.days)
        return WorklistFacts(
            model=self.model,
            sop_class=sop,
            records=self.records,
            patients=tuple(sorted(self.patients)),
            records_without_patient=self.without_patient,
            identifying=tuple(sorted(self.keywords)),
            modalities=tuple(sorted(self.modalities)),
            stations=len(self.stations),
            year_min=days[0].year if days else None,
            year_max=days[-1].year if days else None,
            scheduled_days=len(days),
            span_days=(days[-1] - days[0]).days if days else None,
            truncated=truncated,
            final_status=status,
            cancel_ignored=cancel_ignored,
        )


@functools.cache
def identifier(model: str, implicit: bool) -> bytes:
    """The universal query: every return key empty, the step sequence with one empty-keyed item."""
    if model == "MWL":
        keys: list[tuple[str, str | tuple[tuple[str, str], ...]]] = [(k, "") for k in MWL_TOP]
        keys.append(("ScheduledProcedureStepSequence", tuple((k, "") for k in MWL_STEP)))
        return dimse.encode_nested(keys, implicit)
    return dimse.encode_identifier(tuple((k, "") for k in UPS_TOP), implicit)


async def probe(
    session: DicomClient, sop: str, model: str, hasher: KeyedHasher, max_records: int
) -> WorklistFacts:
    """One bounded universal C-FIND on ``sop`` (accepted on ``session``), reduced to facts.

    A-ABORT in answer is a refusal (Orthanc without DicomAlwaysAllowFindWorklist), not an error.
    Other :class:`~pacsradar.errors.ScanError` propagate to the check's envelope."""
    tally = Tally(model, hasher)
    try:
        query = identifier(model, implicit_vr(session, sop))
        status, truncated = await bounded_find(
            session, sop, query, tally.add, lambda: tally.records, max_records
        )
    except PeerAborted:
        if tally.records:
            # the cancel is sent on the response that reaches the bound, so a partial answer
            # holding that many records was truncated by us
            return tally.facts(sop, None, tally.records >= max_records, cancel_ignored=False)
        return WorklistFacts(model=model, sop_class=sop, refusal="A-ABORT")
    return tally.facts(sop, status, truncated, cancel_ignored=truncated and status is None)
