"""Emulation of the current DICOMHawk (github honeynet/DICOMHawk, rewritten since the version
:class:`lab.honeypots.DicomHawk` follows), written from reading its source (issue 22).

What it puts on the wire, per its ``dicom_server/core`` modules:

* a faithful pynetdicom AE (``dicom_application.py``): every storage context, the Patient and
  Study Root FIND/GET/MOVE models and Verification, any called AE;
* an identity (``vendor_personas.py``, ``VENDOR_PERSONA``): by default DCMTK's implementation
  UID with ``OFFIS_DCMTK_362`` (the original behaviour), or a vendor persona: ``ge_ct``
  (1.2.840.113619.6.96, ``GE_PACS_REV_24``), ``siemens_ct`` (1.3.12.2.1107.5.2,
  ``syngo CT VA48A``), ``philips_mr`` (1.3.46.670589.11, ``PHILIPS_MR_56.1``), each with its
  own AE title and a narrow SOP class list; or what ``customizer/customizer.py`` writes to
  ``.env`` by default (``customizer``): version name ``ORTHANC`` on pynetdicom's UID root;
* a fake archive in a database (``dicomdb.py``): one C-FIND record per entity at the level
  asked, built from the level's keys only (no image attributes), matching on the keys given
  (a random PatientID matches nothing); the studies' UIDs come from pydicom's ``generate_uid``.
  The records carry QueryRetrieveLevel, as issue 22 measured the current version (the
  ``dicomdb.py`` revision read here builds them without it, which the older
  find-level-not-echoed tell would catch: the emulation takes the harder case);
* C-MOVE (``dicom_handlers.py``): the destination is the requestor's own address and port,
  then the number of matches, then Success.

Synthetic data only: names and IDs carry the CANARY prefix (tests/lab/__init__.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from lab import CANARY
from lab.honeypots import PynetdicomHoneypot, hawk_handlers
from lab.ports import LOOPBACK

#: persona -> (AE title, implementation class UID, version name, modality)
PERSONAS: dict[str, tuple[str, str, str, str]] = {
    "default": ("DICOMHAWK", "1.2.276.0.7230010.3.0.3.6.2", "OFFIS_DCMTK_362", "CT"),
    "ge_ct": ("GEREVCT01", "1.2.840.113619.6.96", "GE_PACS_REV_24", "CT"),
    "siemens_ct": ("CTAWP73129", "1.3.12.2.1107.5.2", "syngo CT VA48A", "CT"),
    "philips_mr": ("PHILIPS_MR01", "1.3.46.670589.11", "PHILIPS_MR_56.1", "MR"),
    # customizer/customizer.py defaults: DICOM_IMPLEMENTATION_NAME "ORTHANC" with
    # DICOM_IMPLEMENTATION_UID 1.2.826.0.1.3680043.9.3811.2.0.1 (pynetdicom's root)
    "customizer": ("DICOMHAWK", "1.2.826.0.1.3680043.9.3811.2.0.1", "ORTHANC", "CT"),
    # pynetdicom's own identity (.env DICOM_IMPLEMENTATION_UID/NAME set to pynetdicom's): a
    # sensor that claims nothing it is not, found only by the archive it shares (issue 22 item 5)
    "plain": ("DICOMHAWK", "1.2.826.0.1.3680043.9.3811.3.0.0", "PYNETDICOM_300", "CT"),
}
QR_MODELS = (
    "1.2.840.10008.5.1.4.1.2.1.1",
    "1.2.840.10008.5.1.4.1.2.2.1",
    "1.2.840.10008.5.1.4.1.2.1.3",
    "1.2.840.10008.5.1.4.1.2.2.3",
    "1.2.840.10008.5.1.4.1.2.1.2",
    "1.2.840.10008.5.1.4.1.2.2.2",
)
PERSONA_STORAGE = {
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"),
    "MR": ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"),
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
VERIFICATION = "1.2.840.10008.1.1"

#: level -> the keys a record of that level is built from (dicomdb.py get_*Root_dataset)
LEVEL_KEYS = {
    "PATIENT": ("PatientID", "PatientName"),
    "STUDY": (
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "StudyID",
        "InstitutionName",
        "PatientBirthDate",
        "PatientSex",
        "PatientName",
        "PatientID",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
    ),
}


def fake_archive(patients: int = 5, modality: str = "CT") -> list[Dataset]:
    """One study per patient, UIDs from pydicom's generate_uid, as the rewrite's database."""
    names = ["Jensen^Frederik", "Nielsen^Sofie", "Hansen^Lukas", "Pedersen^Emma", "Larsen^William"]
    archive = []
    for i in range(patients):
        ds = Dataset()
        ds.PatientName = f"{CANARY}{names[i % len(names)]}"
        ds.PatientID = f"{CANARY}{i + 1:04d}"
        ds.PatientSex = "F" if i % 2 else "M"
        ds.PatientBirthDate = f"19{50 + 7 * i % 40}0{1 + i % 9}0{1 + i % 9}"
        ds.InstitutionName = f"{CANARY}Hospital"
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate = f"2024{1 + i % 12:02d}15"
        ds.StudyTime = "101500"
        ds.AccessionNumber = f"ACC{i + 1:05d}"
        ds.StudyID = str(i + 1)
        ds.ModalitiesInStudy = modality
        ds.NumberOfStudyRelatedInstances = 1
        archive.append(ds)
    return archive


class DicomHawkPersona(PynetdicomHoneypot):
    """A pynetdicom AE on loopback with one of the current DICOMHawk's identities."""

    def __init__(self, persona: str = "default", host: str = LOOPBACK, *, max_pdu: int | None = None) -> None:
        super().__init__(host)
        self.persona = persona
        #: a variant that fixes one behaviour (pynetdicom's 16382 default maximum length)
        self.max_pdu = max_pdu
        self.ae_title, self.uid, self.version, self.modality = PERSONAS[persona]
        self.archive = fake_archive(5, self.modality)

    def make(self) -> tuple[Any, list[Any]]:
        from pynetdicom import AE, AllStoragePresentationContexts

        ae = AE(ae_title=self.ae_title)
        ae.implementation_class_uid = self.uid
        ae.implementation_version_name = self.version
        if self.max_pdu is not None:
            ae.maximum_pdu_size = self.max_pdu
        if self.persona in ("default", "customizer"):
            ae.supported_contexts = AllStoragePresentationContexts
        else:
            for uid in (*PERSONA_STORAGE[self.modality], SECONDARY_CAPTURE):
                ae.add_supported_context(uid)
        for uid in (*QR_MODELS, VERIFICATION):
            ae.add_supported_context(uid)
        return ae, hawk_handlers(self._find, self._move)

    def _matching(self, identifier: Dataset) -> list[Dataset]:
        given = {
            e.keyword: str(e.value)
            for e in identifier
            if e.keyword in ("PatientID", "StudyInstanceUID", "AccessionNumber") and e.value
        }
        return [ds for ds in self.archive if all(str(ds.get(k, "")) == v for k, v in given.items())]

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        level = str(identifier.get("QueryRetrieveLevel", ""))
        keys = LEVEL_KEYS.get(level)
        if keys is None:
            yield 0xC000, None  # SERIES/IMAGE of a random archive: not emulated
            return
        seen: set[str] = set()
        for ds in self._matching(identifier):
            entity = str(ds.PatientID if level == "PATIENT" else ds.StudyInstanceUID)
            if entity in seen:
                continue
            seen.add(entity)
            rsp = Dataset()
            rsp.QueryRetrieveLevel = level
            for key in keys:
                setattr(rsp, key, ds.get(key, ""))
            yield 0xFF00, rsp

    def _move(self, event: Any) -> Iterator[Any]:
        requestor = event.assoc.requestor
        yield str(requestor.address), int(requestor.port)
        matches = self._matching(event.identifier)
        yield len(matches)
        for _ in matches:  # never reached by the audit's random study
            yield 0xFF00, None


__all__ = ["PERSONAS", "DicomHawkPersona", "fake_archive"]
