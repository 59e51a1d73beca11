"""What a DICOM service said, as frozen facts (issue 13 part 2, the DICOM half).

The probe stage (the association client and the checks that talk) records answers here; checks
that send nothing themselves, such as the honeypot score (:mod:`pacsradar.dicom.honeypot`), are
pure functions of these facts and are tested against hand-built ones.

Only shapes are kept: PDU fields the peer chose (result, source, reason, sub-item types, the
maximum length, its implementation UID and version name, bounded by ``peer_text``), context
results, timings, and for C-FIND the number of responses, the attribute *keywords* present and
keyed hashes. Never a value of an identifier (HACKING.md rule 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pacsradar.dicom import dimse
from pacsradar.dicom.client import IMPLICIT_VR_LE, AssociationKind, AssociationResult
from pacsradar.dicom.honeypot.toolkit import uid_root
from pacsradar.dicom.sop import CANARY_SYNTAX, NAMES, STORAGE
from pacsradar.errors import ProtocolError
from pacsradar.phi import KeyedHasher

#: A C-FIND identifier is a few hundred bytes; one far larger carries image data (PS3.4 C.4.1.2).
IDENTIFIER_BOUND = 64 * 1024
#: Responses of one C-FIND whose attribute keywords are looked at; counts go on beyond.
SHAPE_SAMPLE = 32

_QR_LEVEL = dimse.DICTIONARY["QueryRetrieveLevel"][0]
_PATIENT_ID = dimse.DICTIONARY["PatientID"][0]
_STUDY_UID = dimse.DICTIONARY["StudyInstanceUID"][0]

#: Attributes of the Image Pixel module (PS3.3 C.7.6.3) and the SOP Common instance UID: an
#: instance's, never a PATIENT or STUDY level answer's (PS3.4 C.6.1.1, C.6.2.1).
IMAGE_LEVEL_TAGS: dict[int, str] = {
    0x00080018: "SOPInstanceUID",
    0x00280002: "SamplesPerPixel",
    0x00280004: "PhotometricInterpretation",
    0x00280010: "Rows",
    0x00280011: "Columns",
    0x00280100: "BitsAllocated",
    0x00280101: "BitsStored",
    0x00280102: "HighBit",
    0x00280103: "PixelRepresentation",
    0x7FE00010: "PixelData",
}
_KEYWORDS: dict[int, str] = {tag: kw for kw, (tag, _vr) in dimse.DICTIONARY.items()} | IMAGE_LEVEL_TAGS


def keyword(tag: int) -> str:
    """The keyword of a tag we know, else the tag itself as (gggg,eeee): never a value."""
    return _KEYWORDS.get(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass(frozen=True)
class AssociationFacts:
    """One answer to one of our A-ASSOCIATE-RQs (PS3.8 §9.3.3, §9.3.4, §9.3.8)."""

    kind: str
    reply_ms: float | None = None
    rj: tuple[int, int, int] | None = None
    abort: tuple[int, int] | None = None
    identity_offered: bool = False
    #: user information sub-item types in order (0x51 max length, 0x52 implementation class
    #: UID, 0x55 version name, 0x59 user identity response ...)
    user_items: tuple[int, ...] = ()
    max_pdu: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    #: context name (NAMES, or the UID) -> result (0 accepted, 1-4 PS3.8 Table 9-18)
    contexts: tuple[tuple[str, int], ...] = ()
    #: the result for our random 2.25 abstract syntax, when it was proposed
    canary_result: int | None = None
    storage_proposed: int = 0
    storage_accepted: int = 0
    ac_digest: str | None = None
    #: (presentation context id, result) in the order the AC listed them (a toolkit trait)
    context_order: tuple[tuple[int, int], ...] = ()

    @property
    def accepted(self) -> bool:
        return self.kind == AssociationKind.ACCEPTED.value


def association_facts(result: AssociationResult, *, identity_offered: bool = False) -> AssociationFacts:
    if result.kind is not AssociationKind.ACCEPTED:
        rj = None
        if result.rj_result is not None and result.rj_source is not None and result.rj_reason is not None:
            rj = (result.rj_result, result.rj_source, result.rj_reason)
        abort = None
        if result.abort_source is not None and result.abort_reason is not None:
            abort = (result.abort_source, result.abort_reason)
        return AssociationFacts(
            kind=result.kind.value,
            reply_ms=result.reply_ms,
            rj=rj,
            abort=abort,
            identity_offered=identity_offered,
        )
    results = {uid: 0 for uid in result.accepted} | dict(result.refused)
    canary = results.get(CANARY_SYNTAX)
    storage = [uid for uid in STORAGE if uid in results]
    return AssociationFacts(
        kind=result.kind.value,
        reply_ms=result.reply_ms,
        identity_offered=identity_offered,
        user_items=result.user_items,
        max_pdu=result.max_pdu,
        implementation_class_uid=result.implementation_class_uid,
        implementation_version_name=result.implementation_version_name,
        contexts=tuple(sorted((NAMES.get(uid, "other"), code) for uid, code in results.items())),
        canary_result=canary,
        storage_proposed=len(storage),
        storage_accepted=sum(1 for uid in storage if results[uid] == 0),
        ac_digest=result.ac_digest,
        context_order=result.context_order,
    )


@dataclass(frozen=True)
class FindFacts:
    """The shape of one C-FIND's answer (PS3.4 C.4.1): counts and keywords, never values."""

    #: "universal" (the query check's), "random-patient" (a PatientID that cannot exist)
    purpose: str
    level: str
    #: final status, None when the answer ended without one (cancelled, aborted, too large)
    status: int | None
    #: pending responses (PS3.7 §9.1.2.1.6 0xFF00/0xFF01), i.e. matches
    matches: int
    #: keywords of the attributes any sampled response carried
    keywords: tuple[str, ...] = ()
    #: of those, the image-level ones (IMAGE_LEVEL_TAGS)
    image_keywords: tuple[str, ...] = ()
    #: how the sampled responses echoed QueryRetrieveLevel (PS3.4 C.4.1.1.3.2 requires it)
    level_missing: int = 0
    level_empty: int = 0
    level_other: int = 0
    largest_response: int = 0
    oversized: bool = False
    #: a digest of the set of keyed PatientID hashes (for diff/monitor: same counts, new people)
    patient_set_digest: str | None = None
    #: sampled Study Instance UIDs counted by the toolkit root they lie under
    #: (pacsradar.dicom.honeypot.toolkit.UID_ROOTS; "other"): roots and counts, never a UID
    study_uid_roots: tuple[tuple[str, int], ...] = ()


def top_level_tags(raw: bytes, implicit: bool) -> list[int]:
    """Tags of the top-level elements of an identifier; sequences are skipped, nothing is read."""
    tags: list[int] = []
    pos, end = 0, len(raw)
    while pos < end:
        tag, value, length = dimse._element(raw, pos, end, implicit)
        tags.append(tag)
        if length == dimse.UNDEFINED:
            pos = dimse._skip_undefined(raw, value, implicit)
        else:
            pos = dimse._checked_end(value, length, end)
    return tags


def identifier_level(identifier: bytes, implicit: bool) -> tuple[str, bool]:
    """(QueryRetrieveLevel, whether a PatientID value was given) of one of our own identifiers."""
    values = dimse.top_level_values(identifier, implicit, frozenset({_QR_LEVEL, _PATIENT_ID}))
    return values.get(_QR_LEVEL, b"").decode("ascii", "replace"), bool(values.get(_PATIENT_ID))


@dataclass
class FindRecorder:
    """Collects one C-FIND's :class:`FindFacts` as responses arrive (see DicomClient.find)."""

    purpose: str
    level: str
    implicit: bool
    hasher: KeyedHasher
    matches: int = 0
    status: int | None = None
    closed: bool = False
    oversized: bool = False
    largest: int = 0
    level_missing: int = 0
    level_empty: int = 0
    level_other: int = 0
    sampled: int = 0
    _tags: set[int] = field(default_factory=set)
    _patients: set[str] = field(default_factory=set)
    _roots: dict[str, int] = field(default_factory=dict)

    def add(self, status: int | None, dataset: bytes | None) -> None:
        if status in (0xFF00, 0xFF01):
            self.matches += 1
        if not dataset:
            return
        self.largest = max(self.largest, len(dataset))
        if self.sampled >= SHAPE_SAMPLE or len(dataset) > IDENTIFIER_BOUND:
            self.oversized = self.oversized or len(dataset) > IDENTIFIER_BOUND
            return
        self.sampled += 1
        try:
            tags = top_level_tags(dataset, self.implicit)
            values = dimse.top_level_values(
                dataset, self.implicit, frozenset({_QR_LEVEL, _PATIENT_ID, _STUDY_UID})
            )
        except ProtocolError:
            return  # the query check reports malformed answers; a shape needs none
        self._tags.update(tags)
        if _QR_LEVEL not in tags:
            self.level_missing += 1
        elif not values.get(_QR_LEVEL):
            self.level_empty += 1
        elif values[_QR_LEVEL] != self.level.encode("ascii"):
            self.level_other += 1
        if pid := values.get(_PATIENT_ID):
            self._patients.add(self.hasher.digest(pid))  # a keyed hash; the value is dropped
        if (study := values.get(_STUDY_UID)) and (root := uid_root(study)):
            self._roots[root] = self._roots.get(root, 0) + 1  # the root's label; the UID is dropped

    def close(self, status: int | None) -> None:
        self.status = status
        self.closed = True

    def facts(self) -> FindFacts:
        keywords = sorted({keyword(t) for t in self._tags})
        digest = None
        if self._patients:
            digest = hashlib.sha256("\n".join(sorted(self._patients)).encode()).hexdigest()[:24]
        return FindFacts(
            purpose=self.purpose,
            level=self.level,
            status=self.status,
            matches=self.matches,
            keywords=tuple(keywords),
            image_keywords=tuple(sorted(IMAGE_LEVEL_TAGS[t] for t in self._tags if t in IMAGE_LEVEL_TAGS)),
            level_missing=self.level_missing,
            level_empty=self.level_empty,
            level_other=self.level_other,
            largest_response=self.largest,
            oversized=self.oversized,
            patient_set_digest=digest,
            study_uid_roots=tuple(sorted(self._roots.items())),
        )


def recorder_for(identifier: bytes, transfer_syntax: str, hasher: KeyedHasher) -> FindRecorder:
    implicit = transfer_syntax == IMPLICIT_VR_LE
    try:
        level, with_patient = identifier_level(identifier, implicit)
    except ProtocolError:
        level, with_patient = "", False
    purpose = "random-patient" if with_patient else "universal"
    return FindRecorder(purpose=purpose, level=level, implicit=implicit, hasher=hasher)


@dataclass(frozen=True)
class DicomFacts:
    """Everything the probes of one endpoint recorded, in the order they happened."""

    associations: tuple[AssociationFacts, ...] = ()
    finds: tuple[FindFacts, ...] = ()
    #: PS3.4 C.4.2.1.5 status of the intrusive C-MOVE of a random study to a random AE
    move_status: int | None = None
    tls: bool = False

    @property
    def accepted(self) -> AssociationFacts | None:
        return next((a for a in self.associations if a.accepted), None)

    @property
    def rejections(self) -> tuple[AssociationFacts, ...]:
        return tuple(a for a in self.associations if a.kind == AssociationKind.REJECTED.value)

    def finds_for(self, purpose: str) -> tuple[FindFacts, ...]:
        return tuple(f for f in self.finds if f.purpose == purpose)


def build(
    associations: Iterable[AssociationFacts],
    finds: Sequence[FindRecorder],
    *,
    move_status: int | None = None,
    tls: bool = False,
) -> DicomFacts:
    return DicomFacts(
        associations=tuple(associations),
        finds=tuple(r.facts() for r in finds),
        move_status=move_status,
        tls=tls,
    )


__all__ = [
    "IDENTIFIER_BOUND",
    "IMAGE_LEVEL_TAGS",
    "AssociationFacts",
    "DicomFacts",
    "FindFacts",
    "FindRecorder",
    "association_facts",
    "build",
    "keyword",
    "recorder_for",
    "top_level_tags",
]
