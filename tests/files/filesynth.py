"""Fast synthetic DICOM for the file-audit tests and bench.

pydicom builds one realistic template per variant (modality, transfer syntax, preamble); each file
is then the template bytes with fixed-width slots overwritten (patient, study, instance values),
so writing 100,000 files costs little more than the writes themselves. All PHI is synthetic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

#: Slot name -> (width, pad byte). Placeholders are unique byte runs found in the template.
SLOTS: dict[str, tuple[int, bytes]] = {
    "PatientName": (40, b" "),
    "PatientID": (16, b" "),
    "PatientBirthDate": (8, b" "),
    "StudyInstanceUID": (58, b"\x00"),
    "SeriesInstanceUID": (58, b"\x00"),
    "SOPInstanceUID": (58, b"\x00"),
    "StudyDate": (8, b" "),
    "AccessionNumber": (16, b" "),
}
_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage, "OT": SecondaryCaptureImageStorage}


def _placeholder(name: str, width: int) -> str:
    """A unique run of bytes valid for the slot's VR (so pydicom writes it without complaint)."""
    index = list(SLOTS).index(name)
    if width == 8:  # DA
        return f"18{index:02d}0101"
    if width == 58:  # UI
        return f"2.25.{index}" + "9" * (width - 5 - len(str(index)))
    return (f"Q{index}X" + "Z" * width)[:width]


@dataclass(frozen=True)
class Template:
    data: bytes
    offsets: tuple[tuple[str, int], ...]

    def render(self, values: dict[str, str]) -> bytes:
        out = bytearray(self.data)
        for name, offset in self.offsets:
            width, pad = SLOTS[name]
            raw = values[name].encode("ascii")[:width].ljust(width, pad)
            out[offset : offset + width] = raw
        return bytes(out)


def make_template(
    modality: str = "CT",
    *,
    implicit: bool = False,
    preamble: bytes | None = None,
    private_tags: bool = True,
    burned_in: bool = False,
    identity_removed: bool = False,
    pixels: int = 32,
    extra: Iterable[tuple[str, object]] = (),
) -> Template:
    """A realistic image header (patient, study, series, equipment, image modules) + small pixels."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = _SOP_CLASS.get(modality, SecondaryCaptureImageStorage)
    for name, (width, _pad) in SLOTS.items():
        setattr(ds, name, _placeholder(name, width))
    ds.StudyTime = "101010"
    ds.Modality = modality
    ds.Manufacturer = "SYNTHETIC"
    ds.InstitutionName = "Synthetic General Hospital"
    ds.InstitutionAddress = "1 Example Street"
    ds.ReferringPhysicianName = "Doctor^Example"
    ds.StationName = "STATION01"
    ds.StudyDescription = "CHEST"
    ds.SeriesDescription = "AXIAL 5mm"
    ds.OperatorsName = "Tech^Example"
    ds.PatientSex = "O"
    ds.PatientAge = "042Y"
    ds.PatientWeight = "70"
    ds.StudyID = "1"
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    ds.FrameOfReferenceUID = generate_uid(prefix="1.2.826.0.1.3680043.10.543.")
    ds.ImagePositionPatient = ["0", "0", "0"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PatientPosition = "HFS"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref.ReferencedSOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.10.543.")
    ds.ReferencedStudySequence = Sequence([ref])
    proc = Dataset()
    proc.CodeValue = "CT0001"
    proc.CodingSchemeDesignator = "99SYN"
    proc.CodeMeaning = "CT chest"
    ds.ProcedureCodeSequence = Sequence([proc])
    if private_tags:
        block = ds.private_block(0x0009, "SYNTHETIC PRIVATE", create=True)
        block.add_new(0x01, "LO", "private value")
        block.add_new(0x02, "SH", "XYZ")
    ds.BurnedInAnnotation = "YES" if burned_in else "NO"
    if identity_removed:
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "synthetic"
    for keyword, value in extra:
        setattr(ds, keyword, value)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = pixels
    ds.Columns = pixels
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = b"".join((i % 4096).to_bytes(2, "little") for i in range(pixels * pixels))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = _placeholder("SOPInstanceUID", 58)
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.543.1"
    ds.file_meta = meta
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    data = bytearray(buf.getvalue())
    if preamble is not None:
        data[:128] = preamble.ljust(128, b"\x00")[:128]
    offsets: list[tuple[str, int]] = []
    for name, (width, _pad) in SLOTS.items():
        marker = _placeholder(name, width).encode()
        at = data.find(marker)
        while at >= 0:  # SOPInstanceUID is also in the file meta (MediaStorageSOPInstanceUID)
            offsets.append((name, at))
            at = data.find(marker, at + width)
    return Template(bytes(data), tuple(offsets))


@dataclass(frozen=True)
class Corpus:
    """What was written: the exact counts a correct audit must report."""

    files: int
    patients: int
    studies: int
    bytes: int
    years: tuple[int, int]
    paths: tuple[Path, ...]


def study_values(
    patients: int,
    studies_per_patient: int,
    instances_per_study: int,
    *,
    names: list[str] | None = None,
    ids: list[str] | None = None,
    first_year: int = 2001,
) -> Iterator[dict[str, str]]:
    """Values for every instance; patient p, study s, instance i. Years span first_year onward."""
    root = "1.2.826.0.1.3680043.10.543"
    for p in range(patients):
        name = names[p] if names else f"PATIENT^P{p:06d}"
        pid = ids[p] if ids else f"ID{p:08d}"
        for s in range(studies_per_patient):
            year = first_year + (p * studies_per_patient + s) % 20
            study_uid = f"{root}.1.{p}.{s}"
            for i in range(instances_per_study):
                yield {
                    "PatientName": name,
                    "PatientID": pid,
                    "PatientBirthDate": "19700101",
                    "StudyInstanceUID": study_uid,
                    "SeriesInstanceUID": f"{root}.2.{p}.{s}",
                    "SOPInstanceUID": f"{root}.3.{p}.{s}.{i}",
                    "StudyDate": f"{year}0102",
                    "AccessionNumber": f"A{p:06d}{s:03d}",
                }


def write_corpus(
    root: Path,
    template: Template,
    values: Iterable[dict[str, str]],
    *,
    name: str = "IM{n:06d}",
    per_dir: int = 1000,
) -> Corpus:
    """Write one file per value set under ``root`` (``per_dir`` files per sub-directory)."""
    paths: list[Path] = []
    patients: set[str] = set()
    studies: set[str] = set()
    years: list[int] = []
    total = 0
    for n, vals in enumerate(values):
        directory = root / f"d{n // per_dir:04d}"
        if n % per_dir == 0:
            directory.mkdir(parents=True, exist_ok=True)
        path = directory / name.format(n=n, **vals)
        data = template.render(vals)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        paths.append(path)
        patients.add(vals["PatientID"])
        studies.add(vals["StudyInstanceUID"])
        years.append(int(vals["StudyDate"][:4]))
        total += len(data)
    return Corpus(
        files=len(paths),
        patients=len(patients),
        studies=len(studies),
        bytes=total,
        years=(min(years), max(years)) if years else (0, 0),
        paths=tuple(paths),
    )
