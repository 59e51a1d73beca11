"""In-memory Query/Retrieve information model for the lab PACS (PS3.4 Annex C).

Only what a scanner needs to see a realistic answer: the Patient Root and Study Root
hierarchies (PS3.4 §C.6.1, §C.6.2), universal matching, single-value matching with ``*``/``?``
wildcards, list-of-UID matching and date range matching (PS3.4 §C.2.2.2), plus the computed
"Number of ... Related ..." attributes (PS3.4 §C.3.2-C.3.4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

__all__ = ["LEVELS", "QueryIndex", "QueryLevelError", "universal_query"]

#: Query/Retrieve levels top-down (PS3.4 §C.3).
LEVELS: tuple[str, ...] = ("PATIENT", "STUDY", "SERIES", "IMAGE")

# Attributes owned by each level; a record at level L carries the attributes of L and above.
_PATIENT_KEYS = frozenset(
    {
        "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
        "PatientAddress", "OtherPatientIDsSequence", "EthnicGroup", "PatientComments",
    }
)  # fmt: skip
_STUDY_KEYS = frozenset(
    {
        "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
        "StudyDescription", "ReferringPhysicianName", "InstitutionName", "PatientAge",
        "PatientSize", "PatientWeight",
    }
)  # fmt: skip
_SERIES_KEYS = frozenset(
    {
        "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "SeriesDate",
        "BodyPartExamined", "Manufacturer", "ManufacturerModelName", "StationName",
        "PerformedProcedureStepStartDate",
    }
)  # fmt: skip
_LEVEL_KEYS: dict[str, frozenset[str]] = {
    "PATIENT": _PATIENT_KEYS,
    "STUDY": _PATIENT_KEYS | _STUDY_KEYS,
    "SERIES": _PATIENT_KEYS | _STUDY_KEYS | _SERIES_KEYS,
}
# Keys that identify a record at each level (PS3.4 §C.6.1.1 / §C.6.2.1 Unique Keys).
_UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
# Keys never matched against, only returned (PS3.4 §C.4.1.1.3).
_NOT_MATCHED = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"})


class QueryLevelError(ValueError):
    """The identifier's QueryRetrieveLevel is missing or invalid for the information model."""


@dataclass
class _Node:
    attrs: Dataset
    children: set[str] = field(default_factory=set)
    instances: int = 0
    series: set[str] = field(default_factory=set)
    studies: set[str] = field(default_factory=set)
    modalities: set[str] = field(default_factory=set)
    sop_classes: set[str] = field(default_factory=set)


class QueryIndex:
    """Records for every level, built once from the lab data sets (pixel data dropped)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self._nodes: dict[str, dict[str, _Node]] = {level: {} for level in LEVELS}
        for ds in datasets:
            self._add(ds)

    def _add(self, ds: Dataset) -> None:
        image = Dataset()
        for elem in ds:
            if elem.keyword != "PixelData":
                image.add(elem)
        for level in LEVELS:
            key = str(image.get(_UNIQUE[level], ""))
            node = self._nodes[level].get(key)
            if node is None:
                node = _Node(_project(image, level))
                self._nodes[level][key] = node
            node.instances += 1
            node.series.add(str(image.get("SeriesInstanceUID", "")))
            node.studies.add(str(image.get("StudyInstanceUID", "")))
            node.modalities.add(str(image.get("Modality", "")))
            node.sop_classes.add(str(image.get("SOPClassUID", "")))

    def count(self, level: str) -> int:
        return len(self._nodes[level])

    def find(self, identifier: Dataset, model: str) -> Iterator[Dataset]:
        """Yield one response identifier per matching record.

        ``model`` is ``"PATIENT"`` (Patient Root) or ``"STUDY"`` (Study Root); Study Root
        has no PATIENT level (PS3.4 §C.6.2).
        """
        level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
        if level not in LEVELS or (model == "STUDY" and level == "PATIENT"):
            raise QueryLevelError(level)
        for node in self._nodes[level].values():
            if all(_matches(elem, node.attrs) for elem in identifier):
                yield _response(identifier, node, level)


def _project(image: Dataset, level: str) -> Dataset:
    keys = _LEVEL_KEYS.get(level)
    out = Dataset()
    for elem in image:
        if keys is None or elem.keyword in keys or elem.keyword == "SpecificCharacterSet":
            out.add(elem)
    return out


def _matches(query: DataElement, record: Dataset) -> bool:
    if query.keyword in _NOT_MATCHED or query.VR == "SQ" or query.is_empty:
        return True  # universal matching (PS3.4 §C.2.2.2.3)
    if query.keyword not in record:
        return False
    wanted = str(query.value).strip()
    have = record[query.keyword]
    have_text = "\\".join(str(v) for v in have.value) if have.VM > 1 else str(have.value)
    if query.VR == "UI":  # list of UID matching (PS3.4 §C.2.2.2.2)
        return have_text in {v.strip() for v in wanted.split("\\")}
    if query.VR in {"DA", "TM", "DT"} and "-" in wanted:  # range matching (§C.2.2.2.5)
        low, _, high = wanted.partition("-")
        return (not low or have_text >= low) and (not high or have_text <= high)
    if query.VR == "PN":
        wanted, have_text = wanted.upper(), have_text.upper()
    if "*" in wanted or "?" in wanted:  # wild card matching (§C.2.2.2.4)
        pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wanted)
        return re.fullmatch(pattern, have_text.strip(), re.DOTALL) is not None
    return have_text.strip() == wanted  # single value matching (§C.2.2.2.1)


def _computed(node: _Node, level: str) -> dict[str, object]:
    # Optional "additional query keys" of PS3.4 Tables C.6-1, C.6-2, C.6-3 and C.6-5.
    if level == "PATIENT":
        return {
            "NumberOfPatientRelatedStudies": len(node.studies),
            "NumberOfPatientRelatedSeries": len(node.series),
            "NumberOfPatientRelatedInstances": node.instances,
        }
    if level == "STUDY":
        return {
            "NumberOfStudyRelatedSeries": len(node.series),
            "NumberOfStudyRelatedInstances": node.instances,
            "ModalitiesInStudy": sorted(node.modalities),
            "SOPClassesInStudy": sorted(node.sop_classes),
        }
    if level == "SERIES":
        return {"NumberOfSeriesRelatedInstances": node.instances}
    return {}


def _response(identifier: Dataset, node: _Node, level: str) -> Dataset:
    """Return every requested key: the record's value, or empty when it has none (§C.4.1.1.3.2)."""
    rsp = Dataset()
    if "SpecificCharacterSet" in node.attrs:
        rsp.SpecificCharacterSet = node.attrs.SpecificCharacterSet
    computed = _computed(node, level)
    for elem in identifier:
        keyword = elem.keyword
        if keyword in ("QueryRetrieveLevel", "SpecificCharacterSet") or not keyword:
            continue
        if keyword in computed:
            setattr(rsp, keyword, computed[keyword])
        elif keyword in node.attrs:
            rsp.add(node.attrs[keyword])
        else:
            rsp.add(DataElement(elem.tag, elem.VR, [] if elem.VR == "SQ" else None))
    rsp.QueryRetrieveLevel = level
    return rsp


def universal_query(level: str, keywords: Iterable[str]) -> Dataset:
    """A C-FIND identifier at ``level`` asking for ``keywords`` with universal matching."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise KeyError(keyword)
        vr = dictionary_VR(tag)
        identifier.add(DataElement(tag, vr, [] if vr == "SQ" else None))
    return identifier
