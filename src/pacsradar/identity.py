"""Patient identity across implementations (issue 22): which keyed records are one patient.

A service tells a patient by PatientID, qualified by IssuerOfPatientID, the assigning authority
(PS3.3 C.7.1.1: the same PatientID from two issuers is two patients). Implementations differ in
what they send for the same stored file: Orthanc's C-FIND returns the issuer, its DICOMweb
(QIDO-RS default study attributes, PS3.18 Table 10.6.3-3) and some archives' indexes leave it
out. A key of PatientID plus issuer then gives every patient two keys.

So each patient record carries two keyed hashes, never values: of the normalised PatientID and,
separately, of the normalised issuer ("" when the service sent none). :func:`link` joins the
records of a whole estate:

* ``issuer``: PatientID and issuer match (two different issuers never merge);
* ``one_issuer``: one side sent no issuer, and that PatientID appears under exactly one issuer
  in the estate, so the record joins it;
* ``no_issuer``: no record of that PatientID carries an issuer; the PatientID alone;
* ambiguous: a record without issuer whose PatientID appears under two or more issuers could
  be any of them (or another patient). It is not counted, and the count becomes "at least";
* ``legacy``: an opaque PatientID (+ issuer) hash from a scan stored before issue 22, which
  cannot be linked and counts as its own patient.

Every merge makes the count smaller, never larger, so the figure stays one we can defend.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from pacsradar.phi import KeyedHasher

Tag = TypeVar("Tag", bound=Hashable)

#: One patient record as the hashes a service's answer gave: (PatientID hash, issuer hash or "").
PatientRecord = tuple[str, str]

Rule = Literal["issuer", "one_issuer", "no_issuer", "legacy"]
RULES: tuple[Rule, ...] = ("issuer", "one_issuer", "no_issuer", "legacy")

#: The namespace of a legacy hash (it goes where the PatientID hash goes); not a valid hex digest.
_LEGACY = "legacy:"


def normalise(value: str | bytes) -> str:
    """The part of an LO/SH value that identifies: PatientID and IssuerOfPatientID are LO, whose
    leading and trailing spaces are not significant (PS3.5 §6.2, Table 6.2-1; PS3.4 C.2.2.2.1
    matching ignores them), and some implementations pad with NUL instead of space.

    Bytes from a C-FIND answer are decoded as UTF-8 (PS3.5 ISO_IR 192 and plain ASCII), else
    as ISO 8859-1 (ISO_IR 100, the usual Western character set), so that the same name reads
    the same from a DICOM port and from DICOMweb's JSON (always UTF-8, PS3.18 F.2); NFC joins
    the two Unicode spellings of an accented letter. Case is kept: IDs are case sensitive.
    """
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
    else:
        text = value
    return unicodedata.normalize("NFC", text).strip(" \x00")


def patient_record(
    hasher: KeyedHasher, patient_id: str | bytes, issuer: str | bytes | None
) -> PatientRecord | None:
    """The keyed record of one answer, or None when it carried no (non-blank) PatientID.

    The two hashes carry distinct prefixes so a PatientID equal to some issuer never reads as it."""
    pid = normalise(patient_id)
    if not pid:
        return None
    who = normalise(issuer) if issuer is not None else ""
    return hasher.digest("patient-id\\" + pid), hasher.digest("issuer\\" + who) if who else ""


def legacy_record(opaque: str) -> PatientRecord:
    """A stored pre-issue-22 PatientID (+ issuer) hash, as a record that links to nothing else."""
    return _LEGACY + opaque, ""


@dataclass
class Linkage(Generic[Tag]):
    """Distinct patients of an estate with the tags (services) that expose each one."""

    #: one entry per distinct patient: its rule and the tags whose records joined it
    patients: dict[PatientRecord, set[Tag]] = field(default_factory=dict)
    rules: dict[PatientRecord, Rule] = field(default_factory=dict)
    #: distinct PatientIDs with records that could belong to two or more patients (not counted)
    ambiguous: int = 0

    @property
    def count(self) -> int:
        return len(self.patients)

    def by_rule(self) -> dict[str, int]:
        """How many patients each rule identified, every rule present (zeros included)."""
        counts = Counter(self.rules.values())
        return {rule: counts.get(rule, 0) for rule in RULES}


def link(records: Iterable[tuple[PatientRecord, Tag]]) -> Linkage[Tag]:
    """Join the records of an estate into distinct patients (module docstring for the rules).

    Order does not matter: issuers are collected over every record before a bare record is
    placed, so "unambiguous in the estate" is decided on the whole estate."""
    issuers: dict[str, set[str]] = {}
    bare: dict[str, set[Tag]] = {}
    out: Linkage[Tag] = Linkage()
    for (pid, issuer), tag in records:
        if pid.startswith(_LEGACY):
            out.patients.setdefault((pid, ""), set()).add(tag)
            out.rules[(pid, "")] = "legacy"
        elif issuer:
            issuers.setdefault(pid, set()).add(issuer)
            out.patients.setdefault((pid, issuer), set()).add(tag)
            out.rules.setdefault((pid, issuer), "issuer")
        else:
            bare.setdefault(pid, set()).add(tag)
    for pid, tags in bare.items():
        known = issuers.get(pid, set())
        if len(known) > 1:
            out.ambiguous += 1  # could be any of them: not counted, the figure is "at least"
            continue
        if known:
            key = (pid, next(iter(known)))
            out.rules[key] = "one_issuer"
        else:
            key = (pid, "")
            out.rules[key] = "no_issuer"
        out.patients.setdefault(key, set()).update(tags)
    return out


__all__ = [
    "RULES",
    "Linkage",
    "PatientRecord",
    "Rule",
    "legacy_record",
    "link",
    "normalise",
    "patient_record",
]
