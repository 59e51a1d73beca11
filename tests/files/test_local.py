"""Local file audit: detection, Annex E counting, preambles, malformed corpus, permissions."""

from __future__ import annotations

import json
import os
import struct
import tempfile
from io import BytesIO
from pathlib import Path

import pytest
from filesynth import make_template, study_values, write_corpus
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian

from pacsradar.files import header, preamble
from pacsradar.files.fallback import parse_with_pydicom
from pacsradar.files.local import audit_paths
from pacsradar.files.options import FileAuditOptions
from pacsradar.models import ScanReport

PE_PREAMBLE = b"MZ" + b"\x90" * 0x3A + struct.pack("<I", 0x40) + b"PE\x00\x00" + b"\x4c\x01"
TIFF_PREAMBLE = b"II*\x00\x08\x00\x00\x00"


def _details(report: ScanReport) -> dict[str, object]:
    return dict(report.results[0].attempts[0].details)


def _finding(report: ScanReport, check_id: str) -> dict[str, object]:
    return dict(next(f for f in report.findings if f.check_id == check_id).evidence)


@pytest.mark.parametrize("workers", [1, 2])
def test_tree_counts_are_exact(tmp_path: Path, workers: int) -> None:
    # Given 3 patients x 2 studies x 4 instances, explicit and implicit VR, plus a text file
    explicit = write_corpus(tmp_path / "a", make_template("CT"), study_values(3, 2, 2))
    implicit = write_corpus(
        tmp_path / "b", make_template("MR", implicit=True), study_values(3, 2, 2, first_year=2001)
    )
    (tmp_path / "notes.txt").write_text("hello")
    # When the tree is audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=workers))
    # Then counts, year range and modalities are exact
    ev = _finding(report, "FILE-PHI")
    assert ev["instances"] == explicit.files + implicit.files == 24
    assert ev["patients"] == 3
    assert ev["studies"] == 6
    assert ev["bytes"] == explicit.bytes + implicit.bytes
    assert (ev["year_min"], ev["year_max"]) == explicit.years
    assert sorted(ev["modalities"]) == ["CT", "MR"]  # type: ignore[type-var]
    assert ev["phi_lines_max"] == 24
    assert "PatientName" in ev["phi_keywords"]  # type: ignore[operator]
    assert ev["private_tag_files"] == 24
    assert _details(report)["not_dicom"] == 1


def test_detection_is_by_content_not_extension(tmp_path: Path) -> None:
    # Given DICOM named like an image series and a text file named .dcm
    data = make_template("CT").render(next(study_values(1, 1, 1)))
    (tmp_path / "IM000001").write_bytes(data)
    (tmp_path / "fake.dcm").write_text("not dicom at all, only text")
    # When audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=1))
    # Then exactly one DICOM file is found
    assert _details(report)["dicom_files"] == 1
    assert _details(report)["not_dicom"] == 1


def test_preamble_less_dataset_is_detected() -> None:
    # Given a dataset written without preamble and file meta (old ACR-NEMA style)
    data = make_template("CT").render(next(study_values(1, 1, 1)))
    meta_end = data.index(b"\x08\x00\x05\x00")  # SpecificCharacterSet, first dataset element
    raw = data[meta_end:]
    # When parsed
    hdr = header.parse(raw, len(raw))
    # Then it is DICOM with its PHI lines, and without a preamble
    assert hdr.status == header.OK
    assert hdr.preamble is None
    assert hdr.phi_lines == 23  # no MediaStorageSOPInstanceUID without meta


def test_walker_agrees_with_pydicom_on_annex_e_tags() -> None:
    # Given a realistic header
    data = make_template("CT", burned_in=True, identity_removed=True).render(next(study_values(1, 1, 1)))
    # When parsed by the fast walker and by pydicom
    fast = header.parse(data, len(data))
    slow = parse_with_pydicom(data, len(data))
    # Then the same Annex E attributes and markers are found
    assert set(fast.phi_tags) == set(slow.phi_tags)
    assert fast.private_tags == slow.private_tags == 3  # creator (0009,0010) + two elements
    assert (fast.patient, fast.study, fast.year) == (slow.patient, slow.study, slow.year)
    assert fast.burned_in and slow.burned_in
    assert fast.identity_removed and fast.deid_method


@pytest.mark.parametrize("syntax", [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_unsupported_encodings_fall_back_to_pydicom(tmp_path: Path, syntax: str) -> None:
    # Given a big-endian or deflated file
    ds = Dataset()
    ds.PatientName = "FALLBACK^TEST"
    ds.PatientID = "FB1"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.StudyDate = "20100101"
    ds.Modality = "US"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    (tmp_path / "f").write_bytes(buf.getvalue())
    # When audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=1))
    # Then pydicom parsed it and its PHI is counted
    assert _details(report)["pydicom_fallback"] == 1
    ev = _finding(report, "FILE-PHI")
    assert ev["instances"] == 1
    assert ev["modalities"] == ["US"]
    assert ev["year_min"] == 2010


def test_dicomdir_is_detected_and_its_nested_records_counted(tmp_path: Path) -> None:
    # Given a DICOMDIR whose directory records carry patient names (PS3.10 §8, PS3.3 F.3)
    record = Dataset()
    record.DirectoryRecordType = "PATIENT"
    record.PatientName = "DIR^PATIENT"
    record.PatientID = "DIR1"
    ds = Dataset()
    ds.FileSetID = "SET"
    ds.DirectoryRecordSequence = Sequence([record])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    (tmp_path / "DICOMDIR").write_bytes(buf.getvalue())
    # When audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=1))
    # Then it counts as a DICOMDIR and the nested PatientName is a PHI line
    ev = _finding(report, "FILE-PHI")
    assert ev["dicomdir_files"] == 1
    assert "PatientName" in ev["phi_keywords"]  # type: ignore[operator]


def test_preamble_check_flags_pe_and_passes_tiff_and_zero(tmp_path: Path) -> None:
    # Given files with a synthetic PE header (no code), a TIFF preamble and a zero preamble
    values = list(study_values(1, 1, 3))
    kinds = (("pe", PE_PREAMBLE), ("tiff", TIFF_PREAMBLE), ("zero", None))
    for (name, pre), vals in zip(kinds, values, strict=True):
        (tmp_path / name).write_bytes(make_template("CT", preamble=pre).render(vals))
    # When audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=1))
    # Then only the PE file is flagged, by keyed hash, and TIFF/zero raise nothing
    ids = sorted(f.check_id for f in report.findings)
    assert ids == ["FILE-PHI", "FILE-PREAMBLE-EXECUTABLE"]
    ev = _finding(report, "FILE-PREAMBLE-EXECUTABLE")
    assert ev["pe"] == 1 and ev["files"] == 1
    assert len(ev["path_hashes"]) == 1  # type: ignore[arg-type]
    assert "pe" not in json.dumps(ev["path_hashes"])


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x00" * 128, preamble.ZERO),
        (TIFF_PREAMBLE.ljust(128, b"\x00"), preamble.TIFF),
        (b"MM\x00*".ljust(128, b"\x00"), preamble.TIFF),
        (PE_PREAMBLE.ljust(128, b"\x00"), preamble.PE),
        (b"MZ".ljust(128, b"\x00"), preamble.UNKNOWN),  # MZ without a PE signature
        (b"\x7fELF\x02\x01\x01".ljust(128, b"\x00"), preamble.ELF),
        (b"\xcf\xfa\xed\xfe".ljust(128, b"\x00"), preamble.MACHO),
        (b"#!/bin/sh\n".ljust(128, b"\x00"), preamble.SCRIPT),
        (b"VENDOR TEXT".ljust(128, b" "), preamble.UNKNOWN),
    ],
)
def test_preamble_kinds(data: bytes, kind: str) -> None:
    # Given a 128-byte preamble / When classified / Then the kind is as expected
    assert preamble.classify(data) == kind


def test_unknown_preamble_is_information(tmp_path: Path) -> None:
    # Given a vendor text preamble
    vals = next(study_values(1, 1, 1))
    (tmp_path / "v").write_bytes(make_template("CT", preamble=b"VENDOR").render(vals))
    # When audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=1))
    # Then it is reported at info level only
    unknown = next(f for f in report.findings if f.check_id == "FILE-PREAMBLE-UNKNOWN")
    assert unknown.severity == "info"


def _malformed_corpus(root: Path) -> int:
    """Write the hostile corpus of the issue next to 5 good files; returns the good count."""
    template = make_template("CT")
    good = list(study_values(1, 1, 5))
    write_corpus(root / "good", template, good)
    bad = root / "bad"
    bad.mkdir()
    data = template.render(good[0])
    # Truncated inside an element header (StudyDescription's tag, without VR and length).
    (bad / "truncated").write_bytes(data[: data.index(b"\x08\x00\x30\x10LO") + 4])
    # Lengths past the end: StudyDescription (0008,1030) LO claims 0x7FF0 bytes.
    at = data.index(b"\x08\x00\x30\x10LO")
    (bad / "past_end").write_bytes(data[: at + 6] + b"\xf0\x7f" + data[at + 8 :])
    # A 4 GB length on an OB element (0009,1001 private, rewritten as OB).
    at = data.index(b"\x08\x00\x30\x10LO")
    huge = data[:at] + b"\x08\x00\x30\x10OB\x00\x00" + struct.pack("<I", 0xFFFFFFF0) + data[at + 8 :]
    (bad / "four_gb").write_bytes(huge)
    # Deep nesting: 100,000 undefined-length sequences, each in an undefined-length item.
    meta_end = data.index(b"\x08\x00\x05\x00")
    nest = b"\x08\x00\x10\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    (bad / "deep").write_bytes(data[:meta_end] + nest * 100_000)
    (bad / "dicm_text").write_bytes(os.urandom(128) + b"DICM" + b"this is not a data set" * 10)
    (bad / "zero").write_bytes(b"")
    os.symlink("loop_b", bad / "loop_a")
    os.symlink("loop_a", bad / "loop_b")
    os.symlink("..", bad / "parent_loop")
    os.mkfifo(bad / "fifo")
    return len(good)


def test_malformed_corpus_loses_no_good_file_and_counts_every_bad_one(tmp_path: Path) -> None:
    # Given the hostile corpus next to good files
    good = _malformed_corpus(tmp_path)
    # When audited with a pool, and with symlinks followed
    for follow in (False, True):
        report = audit_paths([str(tmp_path)], FileAuditOptions(workers=2, follow_symlinks=follow))
        details = _details(report)
        # Then the good files are all there and every bad one has a reason; the three files cut
        # inside their header (truncated, past_end, four_gb) count up to the cut, marked truncated
        assert details["dicom_files"] == good + 3
        assert details["truncated_files"] == 3
        assert "malformed_truncated" not in details
        assert "malformed_length-past-end" not in details
        assert details["malformed_nesting-too-deep"] == 1
        assert details["malformed_no-file-meta"] == 1
        assert details["skipped_empty"] == 1
        assert details["skipped_fifo"] == 1
        if follow:
            assert details["skipped_symlink-loop"] == 3
        else:
            assert details["skipped_symlink"] == 3


def _unprivileged(fn_path: str, result_path: str) -> None:
    os.setgid(65534)
    os.setuid(65534)
    report = audit_paths([fn_path], FileAuditOptions(workers=1))
    Path(result_path).write_text(report.model_dump_json())


def test_permission_denied_is_counted_for_files_and_directories() -> None:
    # Given a tree (world-readable) with a mode-000 file and a mode-000 directory. Tests run as
    # root, who ignores modes, so the audit runs in a forked child that drops to nobody.
    root = Path(tempfile.mkdtemp(prefix="pacsradar-perm-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)  # noqa: S103 - the unprivileged child must enter it
        data = make_template("CT").render(next(study_values(1, 1, 1)))
        (root / "ok").write_bytes(data)
        (root / "locked").write_bytes(data)
        (root / "locked_dir").mkdir()
        (root / "locked_dir" / "inner").write_bytes(data)
        for p in (root / "ok",):
            os.chmod(p, 0o644)
        os.chmod(root / "locked", 0o000)
        os.chmod(root / "locked_dir", 0o000)
        out = root / "result.json"
        out.touch()
        os.chmod(out, 0o666)  # noqa: S103 - the unprivileged child writes its result
        # When the audit runs without privileges
        if os.geteuid() == 0:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                code = 1
                try:
                    _unprivileged(str(root), str(out))
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            report = ScanReport.model_validate_json(out.read_text())
        else:
            report = audit_paths([str(root)], FileAuditOptions(workers=1))
        # Then both are counted as permission-denied and the readable file is audited
        details = _details(report)
        assert details["skipped_permission-denied"] == 2
        assert details["dicom_files"] == 1
    finally:
        os.chmod(root / "locked_dir", 0o700)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_single_file_target_and_missing_path(tmp_path: Path) -> None:
    # Given one file
    path = tmp_path / "one"
    path.write_bytes(make_template("CT").render(next(study_values(1, 1, 1))))
    # When the file itself is the target / Then it is audited
    report = audit_paths([str(path)], FileAuditOptions(workers=1))
    assert _details(report)["dicom_files"] == 1
    # And a missing path is a usage error
    from pacsradar.errors import UsageError

    with pytest.raises(UsageError):
        audit_paths([str(tmp_path / "missing")])


def test_large_header_extends_the_read(tmp_path: Path) -> None:
    # Given a header longer than the first 8 KiB read (two 10 KB LT values)
    vals = next(study_values(1, 1, 1))
    extra = [("ImageComments", "c" * 10_000), ("AdditionalPatientHistory", "h" * 10_000)]
    template = make_template("CT", extra=extra)
    (tmp_path / "big").write_bytes(template.render(vals))
    # When audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=1))
    # Then the whole header is read (nothing partial) and more than 8 KiB were needed
    details = _details(report)
    assert details["dicom_files"] == 1
    assert details["partial_headers"] == 0
    assert int(details["bytes_read"]) > 20_000  # type: ignore[call-overload]


def test_max_files_truncates_and_says_so(tmp_path: Path) -> None:
    # Given 10 files and a bound of 4
    write_corpus(tmp_path, make_template("CT"), study_values(1, 1, 10))
    # When audited
    report = audit_paths([str(tmp_path)], FileAuditOptions(workers=1, max_files=4))
    # Then 4 are read and the truncation is reported
    details = _details(report)
    assert details["files_seen"] == 4
    assert details["truncated_by"] == ["max_files"]
