"""Archives for the file-audit tests, built from real corpora: ZIP, tar (plain, gz, bz2, xz), nested
archives, bombs and encrypted members; and the pydicom-based reference counts they are held to.

The reference never uses pacsradar: a file is a data set if pydicom reads it without ``force``
(``dcmread``), or if it is one of the corpus files pydicom's own README describes as a data set
without File Meta (read with ``read_dataset`` in the encoding the README states), or a gzip of such
a file. Identity values are the raw bytes of the top-level elements, padding stripped.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset

PYDICOM_CORPUS = Path(pydicom.__file__).parent / "data" / "test_files"

#: Corpus files without Part 10 header, as pydicom's test_files/README.txt describes them:
#: name -> (offset of the data set, implicit VR, little endian).
RAW_DATASETS: dict[str, tuple[int, bool, bool]] = {
    # "Same as CT_small.dcm with no File Meta Information header" (the file has 1 stray byte first)
    "no_meta.dcm": (1, False, True),
    "ExplVR_BigEndNoMeta.dcm": (0, False, False),  # "Expl VR Big Endian"
    "ExplVR_LitEndNoMeta.dcm": (0, False, True),  # "Expl VR Little Endian"
    "rtstruct.dcm": (0, True, True),  # "Impl VR Little Endian"
    "OT-PAL-8-face.dcm": (0, True, True),  # pydicom-data: ACR-NEMA style, group lengths
}


def pydicom_data_corpus() -> Path:
    """The ``pydicom-data`` wheel's files (a dev dependency, installed as ``data_store``)."""
    import data_store  # type: ignore[import-not-found]

    return Path(data_store.__file__).parent / "data"


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@dataclass
class Reference:
    datasets: int = 0
    patients: set[bytes] = field(default_factory=set)
    studies: set[bytes] = field(default_factory=set)
    years: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(self, other: Reference) -> None:
        self.datasets += other.datasets
        self.patients |= other.patients
        self.studies |= other.studies
        self.years += other.years
        self.names += other.names

    def add_dataset(self, ds: Dataset, name: str) -> None:
        self.datasets += 1
        self.names.append(name)
        patient = _raw_value(ds, 0x00100020) or _raw_value(ds, 0x00100010)
        if patient:
            self.patients.add(patient)
        study = _raw_value(ds, 0x0020000D)
        if study:
            self.studies.add(study)
        date = _raw_value(ds, 0x00080020)
        if date and date[:4].isdigit() and 1850 <= int(date[:4]) <= 2200:
            self.years.append(int(date[:4]))

    @property
    def year_range(self) -> tuple[int | None, int | None]:
        return (min(self.years), max(self.years)) if self.years else (None, None)


def _raw_value(ds: Dataset, tag: int) -> bytes | None:
    if tag not in ds:
        return None
    elem = ds.get_item(tag)
    if isinstance(elem, RawDataElement):
        raw = elem.value or b""
    else:
        value = elem.value
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    return raw[:256].strip(b" \x00") or None


def read_reference(data: bytes, name: str) -> Dataset | None:
    """The data set pydicom finds in ``data`` (a file called ``name``), or None."""
    with warnings.catch_warnings():
        # pydicom warns about the corpus's deliberate oddities (pytest runs with -W error)
        warnings.simplefilter("ignore")
        return _read_reference(data, name)


def _read_reference(data: bytes, name: str) -> Dataset | None:
    try:
        return dcmread(io.BytesIO(data), stop_before_pixels=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError, struct.error):
        pass
    if name in RAW_DATASETS:
        offset, implicit, little = RAW_DATASETS[name]
        return read_dataset(io.BytesIO(data[offset:]), implicit, little)
    if data[:2] == b"\x1f\x8b":
        inner = gzip.decompress(data)
        return _read_reference(inner, name.removesuffix(".gz"))
    return None


def reads_without_force(path: Path) -> bool:
    """Whether pydicom reads ``path`` as a DICOM file without ``force``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, TypeError, KeyError, struct.error):
            return False
    return True


def reference_of(paths: Iterable[Path]) -> Reference:
    ref = Reference()
    for path in paths:
        ds = read_reference(path.read_bytes(), path.name)
        if ds is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.add_dataset(ds, path.name)
    return ref


# ---- archive builders ----------------------------------------------------------------------------


def zip_tree(src: Path, dest: Path, compression: int = zipfile.ZIP_DEFLATED, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", compression) as zf:
        for path in corpus_files(src):
            zf.write(path, prefix + str(path.relative_to(src)))
    return dest


def tar_tree(src: Path, dest: Path, mode: str = "w:gz") -> Path:
    with tarfile.open(dest, mode) as tf:  # type: ignore[call-overload]
        for path in corpus_files(src):
            tf.add(path, str(path.relative_to(src)), recursive=False)
    return dest


def zip_members(dest: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(dest, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dest


def tar_members(dest: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(dest, mode) as tf:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return dest


def mark_encrypted(path: Path, names: set[str]) -> None:
    """Set the "encrypted" flag (APPNOTE §4.4.4, bit 0) of ``names`` in the local headers and the
    central directory. Their bytes stay readable plaintext: an auditor that peeks would count them."""
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    count, _cd_size, cd_offset = struct.unpack_from("<HII", data, end + 10)
    pos = cd_offset
    for _ in range(count):
        assert data[pos : pos + 4] == b"PK\x01\x02"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        (local,) = struct.unpack_from("<I", data, pos + 42)
        name = bytes(data[pos + 46 : pos + 46 + name_len]).decode()
        if name in names:
            data[pos + 8] |= 1
            data[local + 6] |= 1
        pos += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def zip_bomb(dest: Path, zeros: int, after: dict[str, bytes] | None = None) -> Path:
    """A ZIP whose first member inflates to ``zeros`` zero bytes (about 1000:1), then ``after``."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as out:
            for _ in range(zeros // len(chunk)):
                out.write(chunk)
        for name, data in (after or {}).items():
            zf.writestr(name, data)
    return dest


def tar_gz_bomb(dest: Path, zeros: int, before: dict[str, bytes], after: dict[str, bytes]) -> Path:
    """A tar.gz: ``before`` members, one member of ``zeros`` zero bytes, then ``after`` members.
    Written as a stream so that building it never holds the zeros in memory."""
    chunk = bytes(1 << 20)

    class Zeros(io.RawIOBase):
        def __init__(self) -> None:
            self.left = zeros

        def readable(self) -> bool:
            return True

        def readinto(self, b: object) -> int:
            view = memoryview(b)  # type: ignore[arg-type]
            n = min(len(view), self.left, len(chunk))
            view[:n] = chunk[:n]
            self.left -= n
            return n

    with gzip.open(dest, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        for name, data in before.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("zeros.bin")
        info.size = zeros
        tf.addfile(info, io.BufferedReader(Zeros()))
        for name, data in after.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return dest


def deflate_ratio(path: Path) -> float:
    """Declared uncompressed / compressed bytes of a ZIP (for the bomb tests' Given)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    return sum(i.file_size for i in infos) / max(1, sum(i.compress_size for i in infos))


def file_size(path: Path) -> int:
    return os.stat(path).st_size


__all__ = [
    "PYDICOM_CORPUS",
    "RAW_DATASETS",
    "Reference",
    "corpus_files",
    "deflate_ratio",
    "file_size",
    "mark_encrypted",
    "pydicom_data_corpus",
    "read_reference",
    "reads_without_force",
    "reference_of",
    "tar_gz_bomb",
    "tar_members",
    "tar_tree",
    "zip_bomb",
    "zip_members",
    "zip_tree",
]
