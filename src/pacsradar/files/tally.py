"""Aggregate per-file header results into counts, keyed hashes and year ranges.

A :class:`Tally` is what crosses process boundaries and what findings are built from, so it holds
no PHI value: patient and study identifiers are HMAC'd (:class:`pacsradar.phi.KeyedHasher`) in the
process that read them, before the tally is sealed; paths appear only as keyed hashes unless the
user asked for paths.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pacsradar.files import header as hdrmod
from pacsradar.files import preamble as pre
from pacsradar.files.annex_e import load as load_annex_e
from pacsradar.models import Evidence
from pacsradar.phi import KeyedHasher

#: Bounded lists in evidence (path tokens, keyword lists).
MAX_LISTED = 50
_MODALITY_RE = re.compile(rb"[A-Z0-9_]{1,16}")
#: Valid modality codes already decoded (a handful per archive), bounded.
_MODALITIES: dict[bytes, str] = {}
_MAX_MODALITIES = 256
_ZERO_PREAMBLE = bytes(128)


@dataclass
class Tally:
    #: Whether path tokens are the paths themselves (``--show-paths``) or keyed hashes.
    show_paths: bool = False
    files_seen: int = 0
    dicom_files: int = 0
    dicomdir_files: int = 0
    not_dicom: int = 0
    bytes_dicom: int = 0
    bytes_read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    patients: set[str] = field(default_factory=set)
    studies: set[str] = field(default_factory=set)
    modalities: Counter[str] = field(default_factory=Counter)
    year_min: int | None = None
    year_max: int | None = None
    phi_files: int = 0
    phi_lines_total: int = 0
    phi_lines_max: int = 0
    #: How many files carried each distinct set of Annex E tags (cheap to count, expanded later).
    signatures: Counter[tuple[int, ...]] = field(default_factory=Counter)
    private_files: int = 0
    private_tags: int = 0
    burned_in: int = 0
    identity_removed: int = 0
    deid_method: int = 0
    partial_headers: int = 0
    #: Files that end inside their header, counted up to the cut.
    truncated_files: int = 0
    #: Data sets without Part 10 header (raw, ACR-NEMA), and the ACR-NEMA files among them.
    raw_datasets: int = 0
    acr_nema_files: int = 0
    pydicom_fallback: int = 0
    #: Archives opened (nested ones included), their members, and what the members were.
    archives: int = 0
    archive_members: int = 0
    archive_dicom: int = 0
    archive_not_dicom: int = 0
    #: Archives not opened because archives were off (counted in ``not_dicom`` too).
    archives_unopened: int = 0
    #: Archives that could not be opened / members that could not be read, by reason.
    archive_unreadable: Counter[str] = field(default_factory=Counter)
    archive_unreadable_members: Counter[str] = field(default_factory=Counter)
    preambles: Counter[str] = field(default_factory=Counter)
    #: (kind, path token) for executable preambles; path tokens for unknown preambles.
    executable: list[tuple[str, str]] = field(default_factory=list)
    unknown_preamble: list[str] = field(default_factory=list)
    #: Path tokens of malformed and of truncated files, only filled when paths are shown.
    malformed_paths: list[str] = field(default_factory=list)
    truncated_paths: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    # Raw identifiers for this batch, hashed by seal(); never pickled unsealed.
    _raw_patients: set[bytes] = field(default_factory=set, repr=False)
    _raw_studies: set[bytes] = field(default_factory=set, repr=False)

    def add_header(self, hdr: hdrmod.Header, size: int, token: Callable[[], str], head: bytes) -> None:
        """Count one parsed file that the batch reader handed back (an unusual preamble, or a
        path to list). ``token()`` is the path's keyed hash (or the path if shown); it is only
        computed for the few files that are listed. The counting itself is ``Counts.add``'s."""
        if hdr.status not in (hdrmod.OK, hdrmod.NOT_DICOM):
            if self.show_paths and len(self.malformed_paths) < MAX_LISTED:
                self.malformed_paths.append(token())
        elif hdr.status == hdrmod.OK:
            if hdr.truncated and self.show_paths and len(self.truncated_paths) < MAX_LISTED:
                self.truncated_paths.append(token())
            if hdr.preamble is None:
                kind = "none"
            elif hdr.preamble == _ZERO_PREAMBLE:
                kind = pre.ZERO
            else:
                kind = pre.classify(hdr.preamble, head)
            self.preambles[kind] += 1
            if kind in pre.EXECUTABLE_KINDS:
                if len(self.executable) < MAX_LISTED:
                    self.executable.append((kind, token()))
            elif kind == pre.UNKNOWN and len(self.unknown_preamble) < MAX_LISTED:
                self.unknown_preamble.append(token())
        counts = hdrmod.Counts()
        counts.add(hdr, size, False)
        self.add_counts(counts)

    def add_counts(self, counts: hdrmod.Counts) -> None:
        """Fold in what :func:`pacsradar.files.header.read_files` counted for a batch (the same
        counts as :meth:`add_header` file by file). Raw identifiers stay raw until :meth:`seal`;
        raw Modality values become codes here."""
        self.files_seen += counts.files_seen
        self.dicom_files += counts.dicom_files
        self.dicomdir_files += counts.dicomdir_files
        self.not_dicom += counts.not_dicom
        self.bytes_dicom += counts.bytes_dicom
        self.bytes_read += counts.bytes_read
        self.phi_files += counts.phi_files
        self.phi_lines_total += counts.phi_lines_total
        self.phi_lines_max = max(self.phi_lines_max, counts.phi_lines_max)
        self.private_files += counts.private_files
        self.private_tags += counts.private_tags
        self.burned_in += counts.burned_in
        self.identity_removed += counts.identity_removed
        self.deid_method += counts.deid_method
        self.partial_headers += counts.partial_headers
        self.truncated_files += counts.truncated_files
        self.raw_datasets += counts.raw_datasets
        self.acr_nema_files += counts.acr_nema_files
        self.archives_unopened += counts.archives_unopened
        self.pydicom_fallback += counts.pydicom_fallback
        self.skipped.update(counts.skipped)
        self.malformed.update(counts.malformed)
        for sig, seen in counts.signatures.items():
            self.signatures[sig] += seen[0]
        if counts.zero_preambles:
            self.preambles[pre.ZERO] += counts.zero_preambles
        if counts.no_preambles:
            self.preambles["none"] += counts.no_preambles
        for raw, count in counts.modalities.items():
            self.modalities[_modality(raw)] += count
        self._raw_patients |= counts.patients
        self._raw_studies |= counts.studies
        for year in (counts.year_min, counts.year_max):
            if year >= 0:
                self.year_min = year if self.year_min is None else min(self.year_min, year)
                self.year_max = year if self.year_max is None else max(self.year_max, year)

    def seal(self, hasher: KeyedHasher) -> Tally:
        """Replace raw identifiers by keyed hashes. Call before the tally leaves the process.

        The hashes only count distinct patients and studies (they are never shown), so they are
        keyed BLAKE2b (RFC 7693 keyed mode, a MAC) under a key derived from the scan's HMAC key:
        several times cheaper per value than HMAC-SHA256, and as unlinkable without the key.
        """
        key = _identity_key(hasher)
        self.patients.update(_blake(b"patient:" + v, key) for v in self._raw_patients)
        self.studies.update(_blake(b"study:" + v, key) for v in self._raw_studies)
        self._raw_patients = set()
        self._raw_studies = set()
        return self

    def merge(self, other: Tally) -> None:
        if other._raw_patients or other._raw_studies:
            raise ValueError("merge of an unsealed tally")
        for name in (
            "files_seen",
            "dicom_files",
            "dicomdir_files",
            "not_dicom",
            "bytes_dicom",
            "bytes_read",
            "phi_files",
            "phi_lines_total",
            "private_files",
            "private_tags",
            "burned_in",
            "identity_removed",
            "deid_method",
            "partial_headers",
            "truncated_files",
            "raw_datasets",
            "acr_nema_files",
            "pydicom_fallback",
            "archives",
            "archive_members",
            "archive_dicom",
            "archive_not_dicom",
            "archives_unopened",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.malformed.update(other.malformed)
        self.archive_unreadable.update(other.archive_unreadable)
        self.archive_unreadable_members.update(other.archive_unreadable_members)
        self.patients |= other.patients
        self.studies |= other.studies
        self.modalities.update(other.modalities)
        self.signatures.update(other.signatures)
        self.preambles.update(other.preambles)
        self.phi_lines_max = max(self.phi_lines_max, other.phi_lines_max)
        for y in (other.year_min, other.year_max):
            if y is not None:
                self.year_min = y if self.year_min is None else min(self.year_min, y)
                self.year_max = y if self.year_max is None else max(self.year_max, y)
        self.executable.extend(other.executable[: MAX_LISTED - len(self.executable)])
        self.unknown_preamble.extend(other.unknown_preamble[: MAX_LISTED - len(self.unknown_preamble)])
        self.malformed_paths.extend(other.malformed_paths[: MAX_LISTED - len(self.malformed_paths)])
        self.truncated_paths.extend(other.truncated_paths[: MAX_LISTED - len(self.truncated_paths)])
        self.truncated.extend(t for t in other.truncated if t not in self.truncated)

    # ---- evidence ---------------------------------------------------------------------------

    def keyword_counts(self) -> list[tuple[str, int]]:
        """(Annex E keyword, files carrying it), most frequent first."""
        annex = load_annex_e()
        per_tag: Counter[int] = Counter()
        for sig, count in self.signatures.items():
            for tag in sig:
                per_tag[tag] += count
        named: Counter[str] = Counter()
        for tag, count in per_tag.items():
            named[annex.keyword(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"] += count
        return sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))

    def walk_details(self) -> Evidence:
        """Counts of what was looked at and why files were not audited (attempt details)."""
        details: Evidence = {
            "files_seen": self.files_seen,
            "dicom_files": self.dicom_files,
            "dicomdir_files": self.dicomdir_files,
            "not_dicom": self.not_dicom,
            "malformed": sum(self.malformed.values()),
            "skipped": sum(self.skipped.values()),
            "bytes_read": self.bytes_read,
            "partial_headers": self.partial_headers,
            "truncated_files": self.truncated_files,
            "raw_datasets": self.raw_datasets,
            "acr_nema_files": self.acr_nema_files,
            "pydicom_fallback": self.pydicom_fallback,
            "archives": self.archives,
            "archive_members": self.archive_members,
            "archive_dicom": self.archive_dicom,
            "archive_not_dicom": self.archive_not_dicom,
            "archives_unopened": self.archives_unopened,
            "archives_unreadable": sum(self.archive_unreadable.values()),
            "archive_members_unreadable": sum(self.archive_unreadable_members.values()),
            "truncated": bool(self.truncated),
        }
        for reason, count in sorted(self.archive_unreadable.items()):
            details[f"archives_unreadable_{reason}"] = count
        for reason, count in sorted(self.archive_unreadable_members.items()):
            details[f"archive_members_unreadable_{reason}"] = count
        for reason, count in sorted(self.skipped.items()):
            details[f"skipped_{reason}"] = count
        for reason, count in sorted(self.malformed.items()):
            details[f"malformed_{reason}"] = count
        if self.truncated:
            details["truncated_by"] = sorted(self.truncated)
        if self.malformed_paths:
            details["malformed_paths"] = sorted(self.malformed_paths)
        if self.truncated_paths:
            details["truncated_paths"] = sorted(self.truncated_paths)
        return details

    def phi_evidence(self) -> Evidence:
        """The PHI exposure: counts, Annex E keywords, modalities and the study-year range."""
        keywords = self.keyword_counts()[:MAX_LISTED]
        # Most frequent first, ties by name: batches finish in any order, the report does not.
        modalities = sorted(self.modalities.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_LISTED]
        mean = self.phi_lines_total / self.phi_files if self.phi_files else 0.0
        return {
            "instances": self.dicom_files,
            "dicomdir_files": self.dicomdir_files,
            "bytes": self.bytes_dicom,
            "patients": len(self.patients),
            "studies": len(self.studies),
            "files_with_phi": self.phi_files,
            "phi_lines_total": self.phi_lines_total,
            "phi_lines_max": self.phi_lines_max,
            "phi_lines_mean": round(mean, 1),
            "phi_keywords": [k for k, _ in keywords],
            "phi_keyword_files": [c for _, c in keywords],
            "modalities": [m for m, _ in modalities],
            "modality_files": [c for _, c in modalities],
            "year_min": self.year_min,
            "year_max": self.year_max,
            "burned_in_annotation_files": self.burned_in,
            "private_tag_files": self.private_files,
            "private_tags": self.private_tags,
            "identity_removed_files": self.identity_removed,
            "deidentification_method_files": self.deid_method,
            "partial_headers": self.partial_headers,
            "truncated_files": self.truncated_files,
            "raw_datasets": self.raw_datasets,
            "acr_nema_files": self.acr_nema_files,
            "archive_instances": self.archive_dicom,
            "archive_members_unreadable": sum(self.archive_unreadable_members.values()),
        }


def _identity_key(hasher: KeyedHasher) -> bytes:
    """A 128-bit BLAKE2b key derived from the scan key (two HMAC-SHA256 outputs of 64 bits)."""
    halves = (hasher.digest(b"pacsradar-files-identity:%d" % i) for i in (0, 1))
    return bytes.fromhex("".join(halves))


def _blake(value: bytes, key: bytes) -> str:
    return hashlib.blake2b(value, key=key, digest_size=8).hexdigest()


def _modality(raw: bytes) -> str:
    # Modality is CS (PS3.3 C.7.3.1.1.1): a short code, never PHI. Anything else is "OTHER".
    code = _MODALITIES.get(raw)
    if code is not None:
        return code
    if not _MODALITY_RE.fullmatch(raw):
        return "OTHER"
    code = raw.decode("ascii")
    if len(_MODALITIES) < _MAX_MODALITIES:  # only valid codes are remembered, and only a few
        _MODALITIES[raw] = code
    return code


__all__ = ["MAX_LISTED", "Tally"]
