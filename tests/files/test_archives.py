"""Archives: bombs, encrypted members, nesting, every bound, path tokens, and data sets without a
Part 10 header (raw, big endian, ACR-NEMA) and truncated files, inside and outside archives."""

from __future__ import annotations

import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from archlab import (
    PYDICOM_CORPUS,
    deflate_ratio,
    file_size,
    mark_encrypted,
    tar_gz_bomb,
    tar_members,
    zip_bomb,
    zip_members,
)
from filesynth import make_template, study_values
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from sharelab import CANARY

from pacsradar.files.local import audit_tree
from pacsradar.files.options import ArchiveLimits, FileAuditOptions
from pacsradar.files.tally import Tally

PE = b"MZ" + b"\x00" * 0x3A + b"\x40\x00\x00\x00" + b"PE\x00\x00"


def _dicoms(
    count: int, *, first_year: int = 2001, names: list[str] | None = None, pixels: int = 32
) -> dict[str, bytes]:
    template = make_template("CT", pixels=pixels)
    values = study_values(1, 1, count, first_year=first_year, names=names)
    return {f"IM{n:04d}.dcm": template.render(v) for n, v in enumerate(values)}


def _audit(root: Path, **limits: object) -> Tally:
    options = FileAuditOptions(workers=1, archives=ArchiveLimits(**limits))  # type: ignore[arg-type]
    tally, _ = audit_tree(str(root), options)
    return tally


def test_encrypted_members_are_could_not_read_never_guessed(tmp_path: Path) -> None:
    # Given a ZIP of 3 DICOM files, one flagged encrypted (its bytes left readable plaintext)
    members = _dicoms(3)
    path = zip_members(tmp_path / "export.zip", members)
    mark_encrypted(path, {"IM0001.dcm"})
    # When audited
    tally = _audit(tmp_path)
    # Then the encrypted member is counted as could not read, and not parsed
    assert tally.archive_members == 3
    assert tally.archive_dicom == tally.dicom_files == 2
    assert tally.archive_unreadable_members == {"encrypted": 1}
    assert tally.walk_details()["archive_members_unreadable_encrypted"] == 1


def test_a_zip_bomb_is_never_inflated_past_the_header(tmp_path: Path) -> None:
    # Given a ZIP whose first member inflates 1,000:1 to 256 MiB, then two DICOM files
    path = zip_bomb(tmp_path / "bomb.zip", 256 << 20, after=_dicoms(2))
    assert deflate_ratio(path) > 500
    # When audited
    tally = _audit(tmp_path)
    # Then the bomb member cost one header read (it is not DICOM) and the DICOM files count
    assert tally.archive_not_dicom == 1
    assert tally.dicom_files == 2
    assert tally.bytes_read <= file_size(path) + 64 * 1024
    assert tally.truncated == []


def test_a_tar_gz_bomb_trips_the_ratio_cap(tmp_path: Path) -> None:
    # Given a tar.gz: 2 DICOM files, 64 MiB of zeros (about 1,000:1), then 2 more DICOM files
    tar_gz_bomb(tmp_path / "bomb.tar.gz", 64 << 20, _dicoms(2), _dicoms(2, first_year=2010))
    # When audited with the default ratio cap (200)
    tally = _audit(tmp_path)
    # Then the archive stops at the cap: the members before the bomb count, the bound is named
    assert tally.dicom_files == 2
    assert tally.truncated == ["archive_max_ratio"]
    assert tally.walk_details()["truncated_by"] == ["archive_max_ratio"]
    # And with the cap raised past the bomb's ratio, every member counts
    relaxed = _audit(tmp_path, max_ratio=1e6)
    assert relaxed.dicom_files == 4
    assert relaxed.truncated == []


@pytest.mark.parametrize(
    ("limit", "value", "bound", "dicom"),
    [
        ("max_members", 3, "archive_max_members", range(3, 4)),
        ("max_bytes", 400_000, "archive_max_bytes", range(1, 6)),
        ("max_run_bytes", 400_000, "archive_max_run_bytes", range(1, 6)),
        ("max_seconds", 0.0, "archive_max_seconds", range(0, 1)),
    ],
)
def test_each_bound_stops_the_archive_and_is_named(
    tmp_path: Path, limit: str, value: float, bound: str, dicom: range
) -> None:
    # Given a tar.gz of 6 DICOM files of about 130 KB each (bytes are metered in 64 KiB reads)
    tar_members(tmp_path / "set.tar.gz", _dicoms(6, pixels=256))
    # When audited with one bound set low
    from pacsradar.files import archive

    archive.set_run_budget(archive.RunBudget())  # a fresh run
    tally = _audit(tmp_path, **{limit: value})
    # Then what came before the bound counts, and the bound is named
    assert tally.dicom_files in dicom
    assert tally.truncated == [bound]


def test_a_zip_with_more_entries_than_the_bound_is_not_loaded(tmp_path: Path) -> None:
    # Given a ZIP of 20 members / When audited with max_members=10
    zip_members(tmp_path / "many.zip", {f"f{n}": b"x" for n in range(20)})
    tally = _audit(tmp_path, max_members=10)
    # Then its central directory was not loaded, and the bound is named
    assert tally.archive_members == 0
    assert tally.truncated == ["archive_max_members"]


def test_nesting_depth_is_bounded(tmp_path: Path) -> None:
    # Given a ZIP holding a tar.gz holding a ZIP holding 2 DICOM files, next to 1 DICOM file
    inner = zip_members(tmp_path / "inner.zip", _dicoms(2)).read_bytes()
    middle = tar_members(tmp_path / "middle.tar.gz", {"inner.zip": inner, **_dicoms(1)}).read_bytes()
    (tmp_path / "inner.zip").unlink()
    (tmp_path / "middle.tar.gz").unlink()
    zip_members(tmp_path / "outer.zip", {"middle.tar.gz": middle})
    # When audited with the default depth (2)
    tally = _audit(tmp_path)
    # Then the second level is read and the third is not: could not read, bound named
    assert tally.dicom_files == 1
    assert tally.archives == 2
    assert tally.archive_unreadable_members == {"nesting-too-deep": 1}
    assert tally.truncated == ["archive_max_depth"]
    # And with depth 1, only the outer archive is opened
    flat = _audit(tmp_path, max_depth=1)
    assert flat.dicom_files == 0
    assert flat.archives == 1


def test_a_nested_zip_in_a_stream_is_read_from_a_bounded_buffer(tmp_path: Path) -> None:
    # Given a tar.gz holding a ZIP of 3 DICOM files
    inner = zip_members(tmp_path / "inner.zip", _dicoms(3)).read_bytes()
    (tmp_path / "inner.zip").unlink()
    tar_members(tmp_path / "outer.tar.gz", {"inner.zip": inner})
    # When audited / Then the inner ZIP's members count
    assert _audit(tmp_path).dicom_files == 3
    # And past the buffer bound the inner ZIP is could not read, the outer one goes on
    small = _audit(tmp_path, max_buffered_zip=1024)
    assert small.dicom_files == 0
    assert small.archive_unreadable_members == {"nested-zip-too-large": 1}


def test_corrupt_archives_are_counted_not_raised(tmp_path: Path) -> None:
    # Given a ZIP cut in half, a gzip of garbage and a tar.gz whose stream breaks off
    whole = zip_members(tmp_path / "cut.zip", _dicoms(2)).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 500)
    stream = tar_members(tmp_path / "broken.tar.gz", _dicoms(3)).read_bytes()
    (tmp_path / "broken.tar.gz").write_bytes(stream[: len(stream) // 2])
    # When audited
    tally = _audit(tmp_path)
    # Then nothing raises and each problem has a reason
    assert tally.files_seen == 3
    assert sum(tally.archive_unreadable.values()) + sum(tally.archive_unreadable_members.values()) >= 2


def _raw_dataset(implicit: bool, little: bool, *, acr_nema: bool = False) -> bytes:
    ds = Dataset()
    if acr_nema:
        ds.add_new(0x00080010, "SH", "ACR-NEMA 2.0")  # Recognition Code (retired)
    ds.StudyDate = "19930512"
    ds.Modality = "MR"
    ds.PatientName = "RAW^PATIENT"
    ds.PatientID = "RAW001"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.543.9"
    ds.Rows = 4
    buf = DicomBytesIO()
    buf.is_implicit_VR = implicit
    buf.is_little_endian = little
    write_dataset(buf, ds)
    return buf.getvalue()


@pytest.mark.parametrize(("implicit", "little"), [(True, True), (False, True), (False, False), (True, False)])
def test_raw_datasets_are_detected_in_every_encoding(tmp_path: Path, implicit: bool, little: bool) -> None:
    # Given a data set written without preamble and File Meta, in one VR encoding and byte order
    (tmp_path / "raw").write_bytes(_raw_dataset(implicit, little))
    # When audited, alone and inside a ZIP
    zip_members(tmp_path / "raw.zip", {"raw": _raw_dataset(implicit, little)})
    tally = _audit(tmp_path).seal(FileAuditOptions().hasher)
    # Then both are raw data sets with their identity and year read
    assert tally.dicom_files == tally.raw_datasets == 2
    assert len(tally.patients) == 1
    assert (tally.year_min, tally.year_max) == (1993, 1993)
    assert tally.modalities == {"MR": 2}


def test_acr_nema_files_are_counted(tmp_path: Path) -> None:
    # Given an ACR-NEMA 2.0 style file (Recognition Code, implicit VR little endian)
    (tmp_path / "acr").write_bytes(_raw_dataset(True, True, acr_nema=True))
    # When audited / Then it is a data set, raw, and ACR-NEMA
    tally = _audit(tmp_path)
    assert (tally.dicom_files, tally.raw_datasets, tally.acr_nema_files) == (1, 1, 1)


def test_text_and_binary_files_are_not_taken_for_raw_datasets(tmp_path: Path) -> None:
    # Given text, JSON, an ICC profile and the corpus's dumps
    for name in ("README.txt", "test1.json", "crayons.icc", "rtplan.dump", "rtstruct.dump"):
        (tmp_path / name).write_bytes((PYDICOM_CORPUS / name).read_bytes())
    (tmp_path / "zeros").write_bytes(bytes(4096))
    (tmp_path / "tabs").write_bytes(b"\x08\x00" * 2048)
    # When audited / Then none is DICOM
    tally = _audit(tmp_path)
    assert tally.dicom_files == 0
    assert tally.not_dicom == 7


def test_truncated_files_count_up_to_the_cut(tmp_path: Path) -> None:
    # Given a DICOM file cut inside the length field of each top-level element after Patient ID
    # (offsets from pydicom), alone and inside a ZIP
    data = next(iter(_dicoms(1).values()))
    ds = dcmread(BytesIO(data), stop_before_pixels=True)
    raw = [ds.get_item(tag) for tag in list(ds.keys()) if tag > 0x00100020]
    tells = [elem.value_tell for elem in raw if isinstance(elem, RawDataElement)]
    cuts = {f"cut{at}": data[: at - 2] for at in tells}
    assert len(cuts) > 5
    for name, part in cuts.items():
        (tmp_path / name).write_bytes(part)
    zip_members(tmp_path / "cuts.zip", cuts)
    # When audited
    tally = _audit(tmp_path).seal(FileAuditOptions().hasher)
    # Then every cut file is a data set marked truncated, with the patient before the cut
    assert tally.dicom_files == 2 * len(cuts)
    assert tally.truncated_files == 2 * len(cuts)
    assert len(tally.patients) == 1
    assert tally.malformed == {}


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", "from pacsradar.cli import main; main()", *args],
        capture_output=True,
        timeout=240,
        check=False,
    )


def test_member_paths_are_hashed_unless_shown_and_no_canary_leaks(tmp_path: Path) -> None:
    # Given archives whose names, member names and patients carry the canary, one member with an
    # executable preamble
    names = [f"{CANARY}^ARCHIVE"]
    members = {f"{CANARY}_{k}": v for k, v in _dicoms(2, names=names).items()}
    vals = next(study_values(1, 1, 1, names=names, ids=[f"{CANARY}9"]))
    members[f"{CANARY}_pe.dcm"] = make_template("CT", preamble=PE).render(vals)
    zip_members(tmp_path / f"{CANARY}.zip", members)
    tar_members(tmp_path / f"{CANARY}.tar.gz", {f"{CANARY}_dir/{k}": v for k, v in members.items()})
    # When the CLI audits them at debug level, without and with --show-paths
    hidden = _run("files", str(tmp_path), "-o", "json", "--log-level", "debug")
    shown = _run("files", str(tmp_path), "-o", "json", "--show-paths")
    # Then without --show-paths no canary byte is anywhere, and paths are keyed hashes
    assert hidden.returncode == 0, hidden.stderr[-2000:]
    assert CANARY.encode() not in hidden.stdout + hidden.stderr
    report = json.loads(hidden.stdout)
    finding = next(f for f in report["results"][0]["findings"] if f["check_id"] == "FILE-PREAMBLE-EXECUTABLE")
    assert len(finding["evidence"]["path_hashes"]) == 2
    phi = next(f for f in report["results"][0]["findings"] if f["check_id"] == "FILE-PHI")
    assert phi["evidence"]["archive_instances"] == phi["evidence"]["instances"] == 6
    # And with it, a member is archive!member (and still no patient value)
    assert shown.returncode == 0
    shown_report = json.loads(shown.stdout)
    paths = next(
        f for f in shown_report["results"][0]["findings"] if f["check_id"] == "FILE-PREAMBLE-EXECUTABLE"
    )["evidence"]["paths"]
    assert sorted(paths) == sorted(
        [f"{CANARY}.zip!{CANARY}_pe.dcm", f"{CANARY}.tar.gz!{CANARY}_dir/{CANARY}_pe.dcm"]
    )
    assert f"{CANARY}^ARCHIVE".encode() not in shown.stdout
