"""Ground truth: the file audit against a pydicom-based reference over pydicom's own test corpus
and the pydicom-data wheel, plain and inside archives the test builds (ZIP, tar.gz, nested)."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from archlab import (
    PYDICOM_CORPUS,
    RAW_DATASETS,
    Reference,
    corpus_files,
    pydicom_data_corpus,
    read_reference,
    reads_without_force,
    reference_of,
    tar_tree,
    zip_tree,
)

from pacsradar.files.local import audit_tree, read_file
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.tally import Tally


def _audit_one(path: Path) -> Tally:
    tally = Tally()
    read_file(str(path), tally, FileAuditOptions(workers=1), lambda: "token")
    return tally


def _assert_matches(tally: Tally, ref: Reference) -> None:
    assert tally.dicom_files == ref.datasets
    assert len(tally.patients) == len(ref.patients)
    assert len(tally.studies) == len(ref.studies)
    assert (tally.year_min, tally.year_max) == ref.year_range


@pytest.mark.parametrize("corpus", ["pydicom", "pydicom-data"])
def test_every_file_pydicom_reads_without_force_is_dicom_for_us(corpus: str) -> None:
    # Given pydicom's test corpus (or the pydicom-data wheel), file by file
    root = PYDICOM_CORPUS if corpus == "pydicom" else pydicom_data_corpus()
    files = corpus_files(root)
    assert len(files) >= (176 if corpus == "pydicom" else 60)
    missed = []
    for path in files:
        # When pydicom reads it without force
        if not reads_without_force(path):
            continue
        # Then the audit counts it as one DICOM data set, not malformed
        tally = _audit_one(path)
        if tally.dicom_files != 1:
            missed.append((path.name, dict(tally.malformed), tally.not_dicom))
    assert missed == []


def test_the_files_the_issue_names_are_counted() -> None:
    # Given the corpus files the audit used to miss
    expected = {
        "no_meta.dcm": "raw",  # CT_small without File Meta
        "ExplVR_BigEndNoMeta.dcm": "raw",  # explicit VR big endian, no meta
        "ExplVR_LitEndNoMeta.dcm": "raw",
        "rtstruct.dcm": "raw",
        "SC_rgb_jpeg.dcm": "part10",  # implicit VR data set behind an explicit-VR transfer syntax
        "rtplan_truncated.dcm": "truncated",
        "zipMR.gz": "archive",  # gzip of a DICOM file
    }
    for name, kind in expected.items():
        # When each is audited alone
        tally = _audit_one(PYDICOM_CORPUS / name)
        # Then it is one data set, of the kind expected, with its identity read
        assert tally.dicom_files == 1, name
        assert tally.raw_datasets == (kind == "raw"), name
        assert tally.truncated_files == (kind == "truncated"), name
        assert tally.archive_dicom == (kind == "archive"), name
        assert tally.malformed == {}, name
    truncated = _audit_one(PYDICOM_CORPUS / "rtplan_truncated.dcm").seal(FileAuditOptions().hasher)
    assert len(truncated.patients) == 1  # PatientID stands before the cut


def test_no_meta_counts_like_the_file_it_was_made_from() -> None:
    # Given no_meta.dcm, which pydicom's README says is CT_small.dcm without File Meta
    # When both are audited
    raw = _audit_one(PYDICOM_CORPUS / "no_meta.dcm")
    part10 = _audit_one(PYDICOM_CORPUS / "CT_small.dcm")
    # Then they carry the same identifying attributes, but for the File Meta's SOP Instance UID
    keywords = {k for k, _ in part10.keyword_counts()} - {"MediaStorageSOPInstanceUID"}
    assert {k for k, _ in raw.keyword_counts()} == keywords
    assert len(keywords) > 20
    assert raw.modalities == part10.modalities
    assert (raw.year_min, raw.year_max) == (part10.year_min, part10.year_max)


@pytest.mark.parametrize("corpus", ["pydicom", "pydicom-data"])
def test_tree_counts_match_the_pydicom_reference(corpus: str) -> None:
    # Given a corpus and its pydicom reference (datasets, patients, studies, year range)
    root = PYDICOM_CORPUS if corpus == "pydicom" else pydicom_data_corpus()
    ref = reference_of(corpus_files(root))
    assert ref.datasets >= (160 if corpus == "pydicom" else 60)
    # When the tree is audited with a worker pool
    tally, _ = audit_tree(str(root), FileAuditOptions(workers=2))
    # Then every count matches, and nothing is malformed
    _assert_matches(tally, ref)
    assert sum(tally.malformed.values()) == 0


def test_the_reference_is_not_circular() -> None:
    # Given the raw data sets of the corpus / When the reference reads them (by the README's word)
    for name, (offset, implicit, little) in RAW_DATASETS.items():
        path = PYDICOM_CORPUS / name
        if not path.exists():
            path = pydicom_data_corpus() / name
        ds = read_reference(path.read_bytes(), name)
        # Then pydicom finds a real data set there (identifying elements, ascending tags)
        assert ds is not None and len(ds) >= 10, (name, offset, implicit, little)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Reference]:
    """A tree of archives built from both corpora, and the reference of their content."""
    root = tmp_path_factory.mktemp("archives")
    data = pydicom_data_corpus()
    zip_tree(PYDICOM_CORPUS, root / "pydicom.zip")
    tar_tree(data, root / "pydicom-data.tar.gz")
    # Nested: a ZIP holding a tar.gz of the pydicom corpus (two levels) next to stored members.
    inner = tar_tree(PYDICOM_CORPUS, root / "inner.tar.gz")
    with zipfile.ZipFile(root / "nested.zip", "w", zipfile.ZIP_STORED) as zf:
        zf.write(inner, "export/inner.tar.gz")
        zf.write(PYDICOM_CORPUS / "CT_small.dcm", "export/CT_small.dcm")
    inner.unlink()
    tar_tree(data, root / "plain.tar", mode="w")
    tar_tree(PYDICOM_CORPUS, root / "pydicom.tar.bz2", mode="w:bz2")
    tar_tree(PYDICOM_CORPUS, root / "pydicom.tar.xz", mode="w:xz")
    ref = Reference()
    pyd = reference_of(corpus_files(PYDICOM_CORPUS))
    pdd = reference_of(corpus_files(data))
    # zipMR.gz inside an archive is an archive in an archive: level 2, opened.
    for part in (pyd, pdd, pyd, reference_of([PYDICOM_CORPUS / "CT_small.dcm"]), pdd, pyd, pyd):
        ref.add(part)
    # ... except inside nested.zip's tar.gz, where it would be level 3: not opened.
    ref.datasets -= 1
    return root, ref


def test_archive_counts_match_the_pydicom_reference(archives: tuple[Path, Reference]) -> None:
    # Given ZIP, tar.gz, tar.bz2, tar.xz, plain tar and a nested ZIP built from the corpora
    root, ref = archives
    # When the tree of archives is audited with a worker pool
    tally, _ = audit_tree(str(root), FileAuditOptions(workers=2))
    # Then every data set inside is counted, and the counts match the reference
    _assert_matches(tally, ref)
    assert tally.archive_dicom == ref.datasets
    assert tally.files_seen == 6
    assert tally.not_dicom == 0
    # And the one archive three levels deep was not opened, and said so
    assert tally.archive_unreadable_members == {"nesting-too-deep": 1}
    assert tally.truncated == ["archive_max_depth"]


def test_archives_and_plain_files_count_the_same(tmp_path: Path) -> None:
    # Given the pydicom corpus as plain files and as a ZIP of the same files
    shutil.copytree(PYDICOM_CORPUS, tmp_path / "plain")
    plain, _ = audit_tree(str(tmp_path / "plain"), FileAuditOptions(workers=1))
    (tmp_path / "zipped").mkdir()
    zip_tree(PYDICOM_CORPUS, tmp_path / "zipped" / "corpus.zip")
    # When the ZIP is audited
    zipped, _ = audit_tree(str(tmp_path / "zipped"), FileAuditOptions(workers=1))
    # Then it shows the same data sets, keywords, truncated and raw files as the plain tree
    assert zipped.dicom_files == plain.dicom_files
    assert zipped.keyword_counts() == plain.keyword_counts()
    assert zipped.truncated_files == plain.truncated_files
    assert zipped.raw_datasets == plain.raw_datasets
    assert zipped.archive_not_dicom == plain.not_dicom  # README.txt, JSON, ICC profile...


def test_archives_off_counts_them_as_not_dicom(archives: tuple[Path, Reference]) -> None:
    # Given the archive tree / When audited with archives off
    root, _ = archives
    from pacsradar.files.options import ArchiveLimits

    tally, _ = audit_tree(str(root), FileAuditOptions(workers=1, archives=ArchiveLimits(enabled=False)))
    # Then no member is read and each archive is counted as not opened
    assert tally.dicom_files == 0
    assert tally.archives_unopened == tally.not_dicom == 6


def test_a_tar_member_list_is_not_kept(tmp_path: Path) -> None:
    # Given a tar with many small members
    with tarfile.open(tmp_path / "many.tar", "w") as tf:
        for n in range(2000):
            info = tarfile.TarInfo(f"f{n}")
            tf.addfile(info)
    # When audited / Then every member is seen (empty members are "could not read: empty")
    tally, _ = audit_tree(str(tmp_path), FileAuditOptions(workers=1))
    assert tally.archive_members == 2000
    assert tally.archive_unreadable_members == {"empty": 2000}
