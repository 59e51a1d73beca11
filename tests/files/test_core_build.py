"""The compiled core (mypyc) and its Python source agree; a stale build is never used.

``pacsradar.files.core`` runs compiled when ``pip install -e .`` could build it and as plain Python
otherwise. Both must give identical results on every corpus, hostile files included; these tests
compare the module in use (``header``) with ``core.py`` run as Python (``header.load_source()``).
Without a build they compare the source with itself, and still check the batch reader and tally.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import random
import struct
import types
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from filesynth import make_template, study_values, write_corpus
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian
from test_local import PE_PREAMBLE, TIFF_PREAMBLE, _malformed_corpus

from pacsradar.files import header
from pacsradar.files.fallback import parse_with_pydicom
from pacsradar.files.local import Walker, _WorkerConfig, audit_batch
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.tally import Tally

FIELDS = (
    "status",
    "reason",
    "need",
    "header_end",
    "preamble",
    "dicomdir",
    "partial",
    "truncated",
    "raw",
    "acr_nema",
    "phi_tags",
    "private_tags",
    "patient",
    "study",
    "year",
    "modality",
    "burned_in",
    "identity_removed",
    "deid_method",
)
COUNTS = (
    "files_seen",
    "dicom_files",
    "dicomdir_files",
    "not_dicom",
    "bytes_dicom",
    "bytes_read",
    "phi_files",
    "phi_lines_total",
    "phi_lines_max",
    "private_files",
    "private_tags",
    "burned_in",
    "identity_removed",
    "deid_method",
    "partial_headers",
    "truncated_files",
    "raw_datasets",
    "acr_nema_files",
    "archives_unopened",
    "pydicom_fallback",
    "zero_preambles",
    "no_preambles",
    "year_min",
    "year_max",
    "skipped",
    "malformed",
    "signatures",
    "modalities",
    "patients",
    "studies",
)


@pytest.fixture(scope="module")
def source() -> types.ModuleType:
    return header.load_source()


def _fields(hdr: object) -> tuple[object, ...]:
    return tuple(getattr(hdr, name) for name in FIELDS)


def _named(name: str) -> Dataset:
    ds = Dataset()
    ds.PatientName = name
    ds.PatientID = "ID-" + name
    return ds


def _saved(ds: Dataset, syntax: str) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = syntax
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _seeds() -> list[bytes]:
    """Every kind of header the audit meets: the test templates, preambles, preamble-less data
    sets, DICOMDIR, repeating groups, encodings left to pydicom, and the hostile corpus."""
    vals = next(study_values(1, 1, 1))
    seeds = [
        make_template(modality, implicit=implicit, private_tags=private, burned_in=burned).render(vals)
        for modality, implicit, private, burned in (
            ("CT", False, True, False),
            ("MR", True, True, False),
            ("OT", False, True, True),
            ("CT", False, False, False),
        )
    ]
    seeds.append(make_template("CT", identity_removed=True, preamble=PE_PREAMBLE).render(vals))
    seeds.append(make_template("MR", implicit=True, preamble=TIFF_PREAMBLE).render(vals))
    seeds.append(make_template("CT", extra=[("ImageComments", "c" * 9000)]).render(vals))
    for data in seeds[:2]:
        seeds.append(data[data.index(b"\x08\x00\x05\x00") :])  # no preamble, no file meta
    record = Dataset()
    record.DirectoryRecordType = "PATIENT"
    record.PatientName = "DIR^PATIENT"
    directory = Dataset()
    directory.DirectoryRecordSequence = Sequence([record, record])
    for syntax in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"):
        seeds.append(_saved(directory, syntax))
    overlay = Dataset()
    overlay.PatientName = "OVERLAY^PATIENT"
    overlay.add_new(0x50003000, "OW", b"\x01" * 8)  # Curve Data, listed in Annex E
    overlay.add_new(0x60003000, "OW", b"\x01" * 8)  # Overlay Data, listed
    overlay.add_new(0x60100010, "US", 4)  # Overlay Rows, not listed
    for syntax in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"):
        seeds.append(_saved(overlay, syntax))
    for syntax in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian):
        seeds.append(_saved(_named("ENCODED^PATIENT"), syntax))
    data = seeds[0]
    at = data.index(b"\x08\x00\x30\x10LO")
    meta_end = data.index(b"\x08\x00\x05\x00")
    nest = b"\x08\x00\x10\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    seeds += [
        data[: at + 4],  # truncated in an element header
        data[: at + 6] + b"\xf0\x7f" + data[at + 8 :],  # length past the end
        data[:at] + b"\x08\x00\x30\x10OB\x00\x00" + struct.pack("<I", 0xFFFFFFF0) + data[at + 8 :],
        data[:meta_end] + nest * 80,  # nesting too deep
        os.urandom(128) + b"DICM" + b"this is not a data set" * 10,
        b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100\x08\x00\x20\x00DA\x08\x0020200101",
    ]
    return seeds


def _mutants(seeds: list[bytes], count: int, seed: int) -> Iterator[tuple[bytes, int, bool]]:
    """Deterministic corruptions of the seeds (bytes, lengths, delimiters, VRs), each as
    (prefix, file size, final)."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 5)):
            at = rng.randrange(len(data))
            op = rng.random()
            if op < 0.45:
                data[at] = rng.randrange(256)
            elif op < 0.65:
                length = rng.choice([0xFFFFFFFF, 0, 2, 0x7FFF, rng.getrandbits(32)])
                data[at : at + 4] = struct.pack("<I", length)
            elif op < 0.75:
                del data[at : at + rng.randint(1, 16)]
            elif op < 0.9:
                data[at:at] = rng.choice([b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0" + bytes(4), b"SQ", b"UN"])
            else:
                data[at : at + 2] = rng.choice([b"OB", b"SQ", b"UN", b"XX", b"PN", b"UT"])
        size = len(data) if rng.random() < 0.7 else len(data) + rng.randint(1, 5000)
        cut = len(data) if rng.random() < 0.5 else rng.randrange(len(data) + 1)
        yield bytes(data[:cut]), size, rng.random() < 0.3


def test_compiled_and_source_walkers_agree_on_every_prefix_of_every_corpus(source: types.ModuleType) -> None:
    # Given the corpora, and each cut at many lengths (the reader parses prefixes)
    cases = 0
    for data in _seeds():
        step = 1 if len(data) < 2500 else 13
        for cut in range(0, len(data) + 1, step):
            for size, final in ((len(data), False), (len(data), True), (cut, False)):
                # When both walkers parse the prefix
                ours = header.parse(data[:cut], size, final=final)
                reference = source.parse(data[:cut], size, final=final)
                # Then every field is the same
                assert _fields(ours) == _fields(reference), (len(data), cut, size, final)
                cases += 1
    assert cases > 10_000


def test_compiled_and_source_walkers_agree_on_corrupted_headers(source: types.ModuleType) -> None:
    # Given a few thousand deterministic corruptions of the corpora
    reasons = set()
    cut = 0
    for data, size, final in _mutants(_seeds(), 4000, seed=20261123):
        # When both walkers parse them / Then they agree, and neither raises
        ours = header.parse(data, size, final=final)
        assert _fields(ours) == _fields(source.parse(data, size, final=final))
        reasons.add(ours.reason)
        cut += ours.truncated
    # And the corruptions reached the walkers' error paths, not only the signature check, and
    # the cut files (a length past the end) were counted up to the cut
    assert {"bad-vr", "no-dicom-signature"} <= reasons
    assert cut > 0


def _counts(module: types.ModuleType, paths: list[str], show_paths: bool) -> tuple[object, list[object]]:
    counts = module.Counts()
    slow: list[object] = []

    def keep(index: int, hdr: object, size: int, head: bytes) -> None:
        slow.append((index, _fields(hdr), size, len(head)))

    module.read_files(paths, False, show_paths, 8192, 16 << 20, counts, parse_with_pydicom, keep)
    values = {}
    for name in COUNTS:
        value = getattr(counts, name)
        values[name] = dict(value) if isinstance(value, dict) else value
    return values, slow


def test_compiled_and_source_readers_agree_on_the_malformed_corpus(
    tmp_path: Path, source: types.ModuleType
) -> None:
    # Given the hostile corpus next to good files, preambles of every kind and pydicom encodings
    _malformed_corpus(tmp_path)
    vals = next(study_values(1, 1, 1))
    for name, pre in (("pe", PE_PREAMBLE), ("tiff", TIFF_PREAMBLE), ("vendor", b"VENDOR")):
        (tmp_path / name).write_bytes(make_template("CT", preamble=pre).render(vals))
    (tmp_path / "big_endian").write_bytes(_saved(_named("BIG^ENDIAN"), ExplicitVRBigEndian))
    walked = [p for batch in Walker(str(tmp_path), FileAuditOptions(workers=1)).batches(64) for p in batch]
    paths = [*walked, str(tmp_path / "missing"), str(tmp_path / "bad" / "fifo"), str(tmp_path / "bad")]
    runs = {}
    for show_paths in (False, True):
        # When both readers audit the same paths
        ours = _counts(header, paths, show_paths)
        reference = _counts(source, paths, show_paths)
        # Then the counts and the files handed back to Python are the same
        assert ours == reference
        runs[show_paths] = ours
    counts, _ = runs[False]
    _, slow = runs[True]
    # And the common files were counted in the reader; the five good ones, the three cut inside
    # their header (counted up to the cut) and the big-endian one
    assert isinstance(counts, dict) and counts["dicom_files"] == 5 + 3 + 1
    assert counts["truncated_files"] == 3
    assert counts["pydicom_fallback"] == 1
    assert counts["skipped"] == {"empty": 1, "vanished": 1, "fifo": 1, "special": 1}
    # while three non-zero preambles (PE, TIFF, vendor) and, with paths shown, the two malformed
    # and the three truncated files went back to Python, which classifies preambles and lists paths
    assert len(slow) == 3 + 2 + 3


def test_compiled_and_source_walkers_list_the_same_tree(tmp_path: Path, source: types.ModuleType) -> None:
    # Given the hostile corpus (symlink loops, a FIFO, an empty file)
    _malformed_corpus(tmp_path)
    for follow in (False, True):
        # When both tree walkers walk it
        walkers = [m.TreeWalker(str(tmp_path), 64, -1, follow) for m in (header, source)]
        listed = [sorted(p for batch in w.batches(3, 1) for p in batch) for w in walkers]
        # Then they list the same files and count the same skips
        assert listed[0] == listed[1] and len(listed[0]) == 11
        assert walkers[0].skipped == walkers[1].skipped


def test_batches_start_small_double_and_respect_max_files(tmp_path: Path) -> None:
    # Given 30 files
    write_corpus(tmp_path, make_template("CT"), study_values(1, 1, 30))
    # When walked in batches of at most 8 that start at 2
    sizes = [len(b) for b in Walker(str(tmp_path), FileAuditOptions()).batches(8, 2)]
    # Then the batches double up to the bound, and every file comes once
    assert sizes == [2, 4, 8, 8, 8]
    # And a max_files bound cuts the last batch
    walker = Walker(str(tmp_path), FileAuditOptions(max_files=5))
    assert [len(b) for b in walker.batches(8, 2)] == [2, 3]
    assert walker.truncated == ["max_files"]


def test_batch_counts_equal_the_per_file_tally(tmp_path: Path) -> None:
    # Given a mixed tree: several templates, odd preambles, malformed and non-DICOM files
    _malformed_corpus(tmp_path)
    write_corpus(tmp_path / "mr", make_template("MR", implicit=True), study_values(2, 2, 2, first_year=1999))
    ot = make_template("OT", burned_in=True, identity_removed=True)
    write_corpus(tmp_path / "ot", ot, study_values(1, 1, 3))
    vals = next(study_values(1, 1, 1))
    (tmp_path / "pe").write_bytes(make_template("CT", preamble=PE_PREAMBLE).render(vals))
    (tmp_path / "text").write_text("not dicom")
    options = FileAuditOptions(workers=1, show_paths=True)
    paths = [p for batch in Walker(str(tmp_path), options).batches(1000) for p in batch]
    # When the batch reader counts it, and when each file is added to a tally one by one
    batched = audit_batch(paths, _WorkerConfig(str(tmp_path), options))
    single = Tally(show_paths=True)
    for path in paths:
        single.files_seen += 1
        try:
            data = Path(path).read_bytes()
        except OSError:
            single.skipped["vanished"] += 1
            continue
        if not data:
            single.skipped["empty"] += 1
            continue
        hdr = header.parse(data[:8192], len(data))
        while hdr.status == header.NEED_MORE:
            hdr = header.parse(data[: hdr.need], len(data))
        single.add_header(hdr, len(data), lambda p=path: os.path.relpath(p, tmp_path), data)
    single.seal(options.hasher)
    # Then findings and counts are the same (bytes read aside: the tally here read whole files)
    assert batched.phi_evidence() == single.phi_evidence()
    left, right = batched.walk_details(), single.walk_details()
    left.pop("bytes_read"), right.pop("bytes_read")
    assert left == right
    assert batched.preambles == single.preambles
    assert sorted(batched.executable) == sorted(single.executable)
    assert batched.phi_evidence()["patients"] == 2  # the corpora reuse patient IDs 0 and 1


def test_a_sealed_batch_holds_no_identifier_and_no_path(tmp_path: Path) -> None:
    # Given files of patients with known names, IDs and study UIDs, named after them
    names, ids = ["CANARYPATIENT^ONE", "CANARYPATIENT^TWO"], ["CANARYID01", "CANARYID02"]
    corpus = write_corpus(
        tmp_path, make_template("CT"), study_values(2, 1, 3, names=names, ids=ids), name="{PatientID}_{n}"
    )
    options = FileAuditOptions(workers=1)
    paths = [str(p) for p in corpus.paths]
    # When a worker's batch tally is sealed and pickled (what crosses to the parent)
    sealed = audit_batch(paths, _WorkerConfig(str(tmp_path), options))
    wire = pickle.dumps(sealed)
    # Then it counts the patients and studies but carries no value and no path
    assert (len(sealed.patients), len(sealed.studies)) == (2, 2)
    for needle in (b"CANARYPATIENT", b"CANARYID", b"1.2.826.0.1.3680043.10.543", str(tmp_path).encode()):
        assert needle not in wire


def _fake_build(tmp_path: Path, source_text: bytes, stamp: str | None) -> types.SimpleNamespace:
    (tmp_path / "core.py").write_bytes(source_text)
    if stamp is not None:
        (tmp_path / header.STAMP).write_text(stamp + "\n")
    extension = tmp_path / "core.cpython-311-x86_64-linux-gnu.so"
    return types.SimpleNamespace(COMPILED=True, __file__=str(extension))


def test_a_compiled_core_is_used_only_if_built_from_the_source_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    text = header.source_path().read_bytes()
    digest = hashlib.sha256(text).hexdigest()
    # Given a build stamped with the digest of its source: it is current
    monkeypatch.setattr(header, "_built", _fake_build(tmp_path, text, digest))
    assert header.compiled_is_current() is True
    # Given the source edited after the build: stale
    (tmp_path / "core.py").write_bytes(text + b"\n# edited\n")
    assert header.compiled_is_current() is False
    # Given no stamp at all (built by hand): not trusted
    (tmp_path / header.STAMP).unlink()
    assert header.compiled_is_current() is False
    # Given no source installed next to the build: nothing to be stale against
    (tmp_path / "core.py").unlink()
    assert header.compiled_is_current() is True
    # When the module in use is chosen for a stale build, the source runs and a warning says why
    (tmp_path / "core.py").write_bytes(text)
    monkeypatch.setattr(header, "source_path", lambda: tmp_path / "core.py")
    with caplog.at_level(logging.WARNING, logger="pacsradar.files.header"):
        module, implementation = header._select()
    assert not module.COMPILED and "stale" in implementation
    assert "pip install -e ." in caplog.text
    assert module.parse(make_template("CT").render(next(study_values(1, 1, 1))), 10_000).status == header.OK
    # And a build that does not import at all (half compiled) also leaves the source running
    monkeypatch.setattr(header, "_built", None)
    assert header.compiled_is_current() is None
    module, implementation = header._select()
    assert not module.COMPILED and "does not import" in implementation


def test_a_built_extension_in_the_tree_is_the_one_in_use() -> None:
    # Given an extension built next to core.py (pip install -e . with a C compiler)
    here = header.source_path().parent
    built = [p for p in here.iterdir() if p.name.startswith("core.") and p.suffix in (".so", ".pyd")]
    if not built:
        pytest.skip("no compiled core in this tree: the Python source runs")
    # Then it is current and in use: after editing core.py, rebuild with `pip install -e .`
    assert header.COMPILED, f"stale compiled core ({header.IMPLEMENTATION}): run pip install -e ."
