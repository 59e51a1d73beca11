"""Synthetic, entirely fake DICOM studies for the lab and for ``pacsradar demo``.

Every value is invented by :mod:`faker` from a seed, so runs are reproducible. With a
``canary`` prefix, each PHI-bearing attribute carries a unique marker (``f"{canary}{n}"``) so a
test can grep any output (reports, logs, DB files) for the canary bytes and prove that no
patient data was ever written (HACKING.md rule 1).
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pydicom
from faker import Faker
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from pacsradar import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

__all__ = ["LabSummary", "make_studies", "summarise", "to_part10_bytes", "write_part10"]

_ROWS = _COLS = 8


@dataclass(frozen=True)
class _Protocol:
    modality: str
    sop_class: UID
    descriptions: tuple[str, ...]
    body_parts: tuple[str, ...]


_PROTOCOLS: tuple[_Protocol, ...] = (
    _Protocol(
        "CT",
        CTImageStorage,
        ("CT CHEST W/O CONTRAST", "CT ABDOMEN PELVIS W CONTRAST", "CT HEAD W/O CONTRAST"),
        ("CHEST", "ABDOMEN", "HEAD"),
    ),
    _Protocol(
        "MR",
        MRImageStorage,
        ("MRI BRAIN W/WO CONTRAST", "MRI LUMBAR SPINE W/O", "MRI KNEE RIGHT"),
        ("BRAIN", "LSPINE", "KNEE"),
    ),
    _Protocol(
        "CR",
        ComputedRadiographyImageStorage,
        ("CR CHEST 2 VIEWS", "CR HAND LEFT 3 VIEWS", "CR PELVIS AP"),
        ("CHEST", "HAND", "PELVIS"),
    ),
)

# Length limits of the value representations we fill (PS3.5 §6.2, Table 6.2-1).
_MAX_LEN = {"SH": 16, "LO": 64, "PN": 64}


@dataclass(frozen=True)
class LabSummary:
    """Exact counts of what a lab data set contains (unique UIDs at each level)."""

    patients: int
    studies: int
    series: int
    instances: int


def summarise(datasets: Iterable[Dataset]) -> LabSummary:
    """Count unique patients, studies, series and instances in ``datasets``."""
    patients: set[str] = set()
    studies: set[str] = set()
    series: set[str] = set()
    instances: set[str] = set()
    for ds in datasets:
        patients.add(str(ds.PatientID))
        studies.add(str(ds.StudyInstanceUID))
        series.add(str(ds.SeriesInstanceUID))
        instances.add(str(ds.SOPInstanceUID))
    return LabSummary(len(patients), len(studies), len(series), len(instances))


def to_part10_bytes(ds: Dataset) -> bytes:
    """Encode ``ds`` as a DICOM Part 10 file (PS3.10 §7.1: preamble, 'DICM', meta group)."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def write_part10(datasets: Iterable[Dataset], directory: Path) -> list[Path]:
    """Write each data set as ``<SOPInstanceUID>.dcm`` under ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for ds in datasets:
        path = directory / f"{ds.SOPInstanceUID}.dcm"
        path.write_bytes(to_part10_bytes(ds))
        paths.append(path)
    return paths


def _clean(text: str, vr: str) -> str:
    """Printable ASCII without the VR delimiters backslash (PS3.5 §6.4) and, outside PN, caret."""
    bad = "\\" if vr == "PN" else "\\^"
    out = "".join(c for c in text.replace("\n", ", ") if " " <= c <= "~" and c not in bad)
    return out[: _MAX_LEN[vr]].strip()


def _checked(value: str, vr: str, keyword: str) -> str:
    if len(value) > _MAX_LEN[vr]:
        raise ValueError(f"canary too long for {keyword} ({vr} holds {_MAX_LEN[vr]} chars)")
    return value


def _range(rng: random.Random, bounds: tuple[int, int], what: str) -> int:
    low, high = bounds
    if low < 1 or high < low:
        raise ValueError(f"{what} must be (low, high) with 1 <= low <= high, got {bounds}")
    return rng.randint(low, high)


def make_studies(
    n_patients: int,
    studies_per_patient: tuple[int, int] = (1, 3),
    series_per_study: tuple[int, int] = (1, 2),
    instances_per_series: tuple[int, int] = (1, 3),
    seed: int = 0,
    canary: str | None = None,
) -> list[Dataset]:
    """Return fake CT/MR/CR instances with realistic-looking (invented) PHI.

    Same arguments, same output: faker, the RNG and the UIDs (``generate_uid`` entropy) are
    all derived from ``seed`` and ``canary``. With ``canary``, PatientName, PatientID,
    PatientAddress and InstitutionName carry ``f"{canary}{patient_no}"`` and AccessionNumber
    carries ``f"{canary}{study_no}"``.
    """
    if n_patients < 0:
        raise ValueError("n_patients must be >= 0")
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    uid_counter = 0

    def uid() -> UID:
        nonlocal uid_counter
        uid_counter += 1
        return generate_uid(entropy_srcs=[str(seed), canary or "", str(uid_counter)])

    out: list[Dataset] = []
    study_no = 0
    for patient_no in range(n_patients):
        tag = f"{canary}{patient_no}" if canary is not None else None
        sex = rng.choice(("F", "M"))
        first = fake.first_name_female() if sex == "F" else fake.first_name_male()
        family = tag if tag is not None else _clean(fake.last_name(), "PN")
        patient = Dataset()
        patient.PatientName = _checked(f"{family}^{_clean(first, 'PN')}", "PN", "PatientName")
        patient.PatientID = _checked(tag or f"MRN{rng.randint(10**6, 10**7 - 1)}", "LO", "PatientID")
        birth = fake.date_of_birth(minimum_age=1, maximum_age=95)
        patient.PatientBirthDate = birth.strftime("%Y%m%d")
        patient.PatientSex = sex
        address = _clean(fake.address(), "LO")
        if tag is not None:
            address = _checked(f"{tag} {address}"[:64], "LO", "PatientAddress")
        patient.PatientAddress = address
        institution = _clean(f"{fake.city()} General Hospital", "LO")
        if tag is not None:
            institution = _checked(f"{tag} {institution}"[:64], "LO", "InstitutionName")

        for _ in range(_range(rng, studies_per_patient, "studies_per_patient")):
            study_date = date(rng.randint(1998, 2024), 1, 1) + timedelta(days=rng.randint(0, 364))
            protocol = rng.choice(_PROTOCOLS)
            pick = rng.randrange(len(protocol.descriptions))
            age = max(0, (study_date - birth).days // 365)
            study = Dataset()
            study.StudyInstanceUID = uid()
            study.StudyDate = study.SeriesDate = study.ContentDate = study_date.strftime("%Y%m%d")
            study.StudyTime = f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}00"
            study.AccessionNumber = _checked(
                f"{canary}{study_no}" if canary is not None else f"A{rng.randint(10**7, 10**8)}",
                "SH",
                "AccessionNumber",
            )
            study.StudyID = str(rng.randint(1, 99999))
            study.StudyDescription = protocol.descriptions[pick]
            study.ReferringPhysicianName = (
                f"{_clean(fake.last_name(), 'PN')}^{_clean(fake.first_name(), 'PN')}"
            )
            study.InstitutionName = institution
            study.PatientAge = f"{min(age, 999):03d}Y"
            study_no += 1
            n_series = _range(rng, series_per_study, "series_per_study")
            for series_no in range(1, n_series + 1):
                series_uid = uid()
                for instance_no in range(1, _range(rng, instances_per_series, "instances_per_series") + 1):
                    ds = _instance(rng, protocol, pick, patient, study, uid())
                    ds.SeriesInstanceUID = series_uid
                    ds.SeriesNumber = series_no
                    ds.SeriesDescription = f"{protocol.body_parts[pick]} SERIES {series_no}"
                    ds.InstanceNumber = instance_no
                    ds.ImagePositionPatient = [0.0, 0.0, float(instance_no * 5)]
                    out.append(ds)
    return out


def _instance(
    rng: random.Random,
    protocol: _Protocol,
    pick: int,
    patient: Dataset,
    study: Dataset,
    sop_instance_uid: UID,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = _file_meta(protocol.sop_class, sop_instance_uid)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"] + (["AXIAL"] if protocol.modality != "CR" else [])
    ds.SOPClassUID = protocol.sop_class
    ds.SOPInstanceUID = sop_instance_uid
    ds.update(patient)
    ds.update(study)
    ds.Modality = protocol.modality
    ds.Manufacturer = "PACSRADAR LAB"
    ds.ManufacturerModelName = f"SYNTH-{protocol.modality}"
    ds.StationName = f"{protocol.modality}{rng.randint(1, 9):02d}"
    ds.BodyPartExamined = protocol.body_parts[pick]
    ds.PatientPosition = "HFS" if protocol.modality != "CR" else "ERECT"
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[str(study.StudyInstanceUID), "for"])
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.5, 0.5]
    _modality_module(ds, protocol.modality, rng)
    _pixels(ds, rng)
    return ds


def _file_meta(sop_class: UID, sop_instance: UID) -> FileMetaDataset:
    # File Meta Information, PS3.10 §7.1; transfer syntax Explicit VR Little Endian (PS3.5 §A.2).
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _modality_module(ds: Dataset, modality: str, rng: random.Random) -> None:
    """The Type 1/2 attributes of the CT (C.8.2.1), MR (C.8.3.1) and CR (C.8.1.1) modules."""
    if modality == "CT":
        ds.KVP = rng.choice((100, 120, 140))
        ds.SliceThickness = 5.0
        ds.AcquisitionNumber = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
    elif modality == "MR":
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SliceThickness = 4.0
        ds.RepetitionTime = float(rng.choice((500, 2500, 4000)))
        ds.EchoTime = float(rng.choice((15, 90, 110)))
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = rng.choice((1.5, 3.0))
    else:
        ds.ViewPosition = rng.choice(("PA", "AP", "LL"))


def _pixels(ds: Dataset, rng: random.Random) -> None:
    # Image Pixel module (PS3.3 C.7.6.3): 8x8 MONOCHROME2, 12 bits stored in 16.
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = _ROWS
    ds.Columns = _COLS
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    n = _ROWS * _COLS
    ds.PixelData = struct.pack(f"<{n}H", *(rng.randrange(0, 4096) for _ in range(n)))
    ds["PixelData"].VR = "OW"
