"""The compiled core of the local file audit: the DICOM header walker and the per-batch file reader.

This module is the audit's hot loop. It is compiled with mypyc when a compiler is available
(``setup.py``) and runs as plain Python otherwise, with identical results; import it through
:mod:`pacsradar.files.header`, which configures its tag tables, checks that a compiled build is not
older than this source, and says which one is in use (``header.COMPILED``). It imports nothing
outside the standard library, so that compiling it does not mean type-checking pydicom.

The walker. Why not pydicom for every file: building a ``Dataset`` costs far more than the audit
needs. The audit needs only tags, VRs and lengths (to classify attributes against PS3.15 Annex E)
plus a few values (patient/study identity for keyed hashing, study year, modality,
de-identification markers). The walker reads exactly that from a byte prefix, never recurses (an
explicit stack, bounded depth), and checks every length against the file size, so hostile files
cannot make it allocate, loop or read past the end. Encodings it does not handle (explicit VR big
endian, deflate, implicit-VR file meta) are reported as ``UNSUPPORTED`` so the caller can fall back
to pydicom. It is written for the compiler: little-endian integers are read byte by byte (no
``struct`` call and tuple per element), VRs and tags are classified through tables indexed by
small ints (lists of ``bytes``: no dict lookup, hence no int object, per element), wanted values go
to fixed slots, and module constants are ``Final`` (static in the compiled module).

The reader (:func:`read_files`) opens, reads and walks a batch of files and counts the common
outcomes in :class:`Counts` without leaving compiled code; the rare files that need a path token
or a preamble check are handed back to Python (the ``slow`` callback) whole.

Layout references: PS3.10 §7.1 (128-byte preamble, ``DICM`` prefix, File Meta Information in
explicit VR little endian), PS3.5 §7.1.2/§7.1.3 (explicit/implicit data element encoding),
PS3.5 §7.5 (sequences and items, defined and undefined lengths).
"""

from __future__ import annotations

import errno
import os
import stat
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Final

OK: Final = 0
NOT_DICOM: Final = 1
MALFORMED: Final = 2
NEED_MORE: Final = 3
UNSUPPORTED: Final = 4
#: Not a data set but an archive or compressed stream (``reason`` says which: ARCHIVE_KINDS); the
#: caller opens it (:mod:`pacsradar.files.archive`) or counts it as not DICOM.
ARCHIVE: Final = 5

UNDEFINED: Final = 0xFFFFFFFF
MAX_DEPTH: Final = 64

# PS3.5 §7.1.2: VRs whose explicit encoding has 2 reserved bytes and a 32-bit length.
_LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
# PS3.5 §6.2: every VR.
_VALID_VRS: Final = _LONG_VRS | frozenset(
    {
        b"AE",
        b"AS",
        b"AT",
        b"CS",
        b"DA",
        b"DS",
        b"DT",
        b"FL",
        b"FD",
        b"IS",
        b"LO",
        b"LT",
        b"PN",
        b"SH",
        b"SL",
        b"SS",
        b"ST",
        b"TM",
        b"UI",
        b"UL",
        b"US",
    }
)
# Transfer syntaxes (PS3.5 §10 and Annex A).
TS_IMPLICIT_LE: Final = b"1.2.840.10008.1.2"
_TS_UNSUPPORTED: Final = frozenset(
    {
        b"1.2.840.10008.1.2.2",  # explicit VR big endian (retired, PS3.5 A.3)
        b"1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian (PS3.5 A.5)
        b"1.2.840.10008.1.2.4.95",  # JPIP referenced deflate
    }
)
DICOMDIR_SOP_CLASS: Final = b"1.2.840.10008.1.3.10"  # Media Storage Directory Storage (PS3.10 §8)

_PIXEL_FIRST: Final = 0x7FE00008  # Float Pixel Data; 7FE0,0009 Double, 7FE0,0010 Pixel Data

# Values we read (top level only), each in its own slot of the walk's value list (slot 0 unused).
_S_PATIENT_NAME: Final = 1  # (0010,0010)
_S_PATIENT_ID: Final = 2  # (0010,0020)
_S_STUDY_UID: Final = 3  # (0020,000D)
_S_STUDY_DATE: Final = 4  # (0008,0020)
_S_MODALITY: Final = 5  # (0008,0060)
_S_BURNED_IN: Final = 6  # (0028,0301)
_S_IDENTITY_REMOVED: Final = 7  # (0012,0062)
_S_DEID_METHOD: Final = 8  # (0012,0063)
_S_DEID_METHOD_CODES: Final = 9  # (0012,0064)
_S_SOP_CLASS: Final = 10  # (0008,0016)
_S_MEDIA_SOP_CLASS: Final = 11  # (0002,0002)
_S_TRANSFER_SYNTAX: Final = 12  # (0002,0010)
_S_RECOGNITION: Final = 13  # (0008,0010) Recognition Code, retired: "ACR-NEMA 1.0" / "ACR-NEMA 2.0"
_WANTED: Final = {
    0x00100010: _S_PATIENT_NAME,
    0x00100020: _S_PATIENT_ID,
    0x0020000D: _S_STUDY_UID,
    0x00080020: _S_STUDY_DATE,
    0x00080060: _S_MODALITY,
    0x00280301: _S_BURNED_IN,
    0x00120062: _S_IDENTITY_REMOVED,
    0x00120063: _S_DEID_METHOD,
    0x00120064: _S_DEID_METHOD_CODES,
    0x00080016: _S_SOP_CLASS,
    0x00020002: _S_MEDIA_SOP_CLASS,
    0x00020010: _S_TRANSFER_SYNTAX,
    0x00080010: _S_RECOGNITION,
}
_N_SLOTS: Final = 14
_MAX_VALUE: Final = 256  # longest value we ever copy (LO is 64 chars, UI 64, PN 5x64)


def _probe() -> None:
    """Only here to be looked at: compiled by mypyc, a function is no longer a Python function."""


#: True when this module is the mypyc-compiled extension, False when it runs as Python source.
COMPILED: Final = not isinstance(_probe, types.FunctionType)


class Header:
    """What the walker learnt from one file. Values are kept in memory only, never rendered.

    ``partial``: the walk stopped at a read bound before the end of the header. ``truncated``: the
    file itself ends inside the header (an element, item or sequence runs past its end); what
    stands before the cut is counted. ``raw``: a data set without Part 10 preamble and File Meta
    Information (PS3.10 §7.1), ACR-NEMA 1.0/2.0 files among them (``acr_nema``).
    """

    __slots__ = (
        "acr_nema",
        "burned_in",
        "deid_method",
        "dicomdir",
        "header_end",
        "identity_removed",
        "modality",
        "need",
        "partial",
        "patient",
        "phi_tags",
        "preamble",
        "private_tags",
        "raw",
        "reason",
        "status",
        "study",
        "truncated",
        "year",
    )

    def __init__(self, status: int, reason: str = "", need: int = 0) -> None:
        self.status = status
        self.reason = reason
        self.need = need
        self.header_end = 0
        self.preamble: bytes | None = None
        self.dicomdir = False
        self.partial = False
        self.truncated = False
        self.raw = False
        self.acr_nema = False
        #: Annex E tags present and non-empty, at any depth, each once, in file order.
        self.phi_tags: tuple[int, ...] = ()
        self.private_tags = 0
        self.patient: bytes | None = None
        self.study: bytes | None = None
        self.year: int | None = None
        self.modality: bytes | None = None
        self.burned_in = False
        self.identity_removed = False
        self.deid_method = False

    @property
    def phi_lines(self) -> int:
        return len(self.phi_tags)


def _fail(status: int, reason: str) -> Header:
    return Header(status, reason)


# ---- lookup tables ---------------------------------------------------------------------------
# VR kinds, indexed by the VR's two ASCII bytes as one 16-bit int (first byte high): 0 = not a VR.
_SHORT: Final = 1  # 16-bit length (PS3.5 Table 7.1-2)
_LONG: Final = 2  # 2 reserved bytes and a 32-bit length (PS3.5 Table 7.1-1)
_SEQ: Final = 3  # SQ: long, and a container (PS3.5 §7.5)
_VR_UN: Final = 0x554E  # "UN"


def _vr_table() -> bytes:
    table = bytearray(0x10000)
    for vr in _VALID_VRS:
        table[vr[0] << 8 | vr[1]] = _SEQ if vr == b"SQ" else _LONG if vr in _LONG_VRS else _SHORT
    return bytes(table)


_VR_KIND: Final = _vr_table()

# Tag classes, one byte per tag: bit 1 = listed in Annex E Table E.1-1, bit 2 = value wanted (top
# level), bit 4 = dictionary VR is SQ (how implicit VR recognises a defined-length sequence), and
# for a wanted value its slot in the walk's value list (``cls >> 3``). Odd (private) groups never
# get bits 1 and 2: the walker counts them as private first.
_LISTED: Final = 1
_VALUE: Final = 2
_SQ_BIT: Final = 4
_NAMED: Final = _LISTED | _VALUE
_SLOT_SHIFT: Final = 3


_NO_CHUNK: Final = bytes(256)


class _Tables:
    """Tag tables, set once by :func:`configure` (the caller owns the data: Annex E, pydicom)."""

    def __init__(self) -> None:
        self.ready = False
        #: ``groups[group][element >> 8][element & 0xFF]`` is the tag's class byte.
        self.groups: list[list[bytes]] = []
        #: Whether a tag, repeating-group tags included, is in Annex E Table E.1-1.
        self.annex_listed: Callable[[int], bool] = _unlisted


def _unlisted(tag: int) -> bool:
    return False


_TABLES: Final = _Tables()


def configure(listed: Iterable[int], sq_tags: Iterable[int], annex_listed: Callable[[int], bool]) -> None:
    """Set the tag tables: ``listed`` are the tags of Annex E Table E.1-1, ``sq_tags`` the tags
    whose dictionary VR is SQ, ``annex_listed(tag)`` whether any tag, repeating groups (50xx curves,
    60xx overlays) included, is in Table E.1-1.

    The classes become a two-level table, ``groups[group][element >> 8][element & 0xFF]``:
    indexing lists and bytes by small ints costs no hashing and no int object, unlike a dict keyed
    by tag; unlisted groups and element ranges share one all-zero chunk (about 0.7 MB in all).
    """
    classes: dict[int, int] = {}
    for tag in listed:
        if not tag >> 16 & 1:
            classes[tag] = _LISTED
    for tag, slot in _WANTED.items():
        classes[tag] = classes.get(tag, 0) | _VALUE | slot << _SLOT_SHIFT
    for tag in sq_tags:
        classes[tag] = classes.get(tag, 0) | _SQ_BIT
    chunks: dict[int, bytearray] = {}
    for tag, cls in classes.items():
        if 0 <= tag <= 0xFFFFFFFF:
            chunks.setdefault(tag >> 8, bytearray(256))[tag & 0xFF] = cls
    no_group = [_NO_CHUNK] * 256
    groups = [no_group] * 0x10000
    for key, chunk in chunks.items():
        if groups[key >> 8] is no_group:
            groups[key >> 8] = list(no_group)
        groups[key >> 8][key & 0xFF] = bytes(chunk)
    _TABLES.groups = groups
    _TABLES.annex_listed = annex_listed
    _TABLES.ready = True


# Fast walks: an element whose group is at least the "guard" needs a closer look. At top level
# that is Pixel Data's group (7FE0,0008 onwards ends the header); directly inside a sequence every
# element does (only items belong there); inside an item none does.
_PIXEL_GROUP: Final = _PIXEL_FIRST >> 16
_NO_GROUP: Final = 0x10000
_PAD: Final = b" \x00"


def _u16(buf: bytes, pos: int) -> int:
    return buf[pos] | buf[pos + 1] << 8


def _u32(buf: bytes, pos: int) -> int:
    return buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16 | buf[pos + 3] << 24


def _blank(buf: bytes, pos: int, end: int) -> bool:
    """Whether ``buf[pos:end]`` (clipped to ``buf``) is only padding (spaces and NULs)."""
    end = min(end, len(buf))
    while pos < end:
        byte = buf[pos]
        if byte != 0x20 and byte != 0:
            return False
        pos += 1
    return True


def _value(buf: bytes, pos: int, length: int) -> bytes:
    """At most :data:`_MAX_VALUE` bytes of a value without leading or trailing padding (spaces and
    NULs: PS3.5 §6.2 pads odd-length text with a space and UIDs with NUL). Within ``buf``."""
    end = pos + min(length, _MAX_VALUE)
    while pos < end and (buf[pos] == 0x20 or buf[pos] == 0):
        pos += 1
    while end > pos and (buf[end - 1] == 0x20 or buf[end - 1] == 0):
        end -= 1
    return buf[pos:end]


def _new_values() -> list[bytes | None]:
    return [None] * _N_SLOTS


def parse(buf: bytes, size: int, *, final: bool = False) -> Header:
    """Walk the header in ``buf`` (a prefix of a file of ``size`` bytes).

    Returns ``NEED_MORE`` (with ``need``, the prefix length to read next) when the header goes on
    past ``buf`` and the file is longer. With ``final`` the caller cannot read more (a share's
    byte bound): what was parsed is returned as a partial header. A file that is not DICOM but
    starts like an archive or compressed stream is ``ARCHIVE`` (:func:`archive_kind`).
    """
    if not _TABLES.ready:
        raise RuntimeError("import the walker through pacsradar.files.header (tables not configured)")
    n = len(buf)
    if size == 0 or n == 0:
        return _fail(NOT_DICOM, "empty")
    preamble: bytes | None = None
    if n >= 132 and buf[128] == 0x44 and buf[129] == 0x49 and buf[130] == 0x43 and buf[131] == 0x4D:
        preamble = buf[:128]  # "DICM" follows the preamble (PS3.10 §7.1)
        start = 132
        if n < 140:
            return _need_or(buf, size, 4096, final, "truncated-meta")
        if _u16(buf, start) != 0x0002:
            return _fail(MALFORMED, "no-file-meta")
        if not _VR_KIND[buf[start + 4] << 8 | buf[start + 5]]:
            # PS3.10 §7.1 mandates explicit VR LE meta; some writers used implicit VR.
            return _fail(UNSUPPORTED, "implicit-vr-meta")
        explicit = True
    else:
        guess = guess_dataset(buf, size)
        if guess < 0:
            kind = archive_kind(buf)
            if kind:
                return _fail(ARCHIVE, kind)
            return _fail(NOT_DICOM, "no-dicom-signature")
        encoding = guess & 3
        if encoding >= _ENC_EXPLICIT_BE:
            # Big endian without File Meta (PS3.5 §7.3; ACR-NEMA allowed it): pydicom reads it.
            return _fail(UNSUPPORTED, "big-endian-raw")
        start = guess >> 2
        explicit = encoding == _ENC_EXPLICIT_LE
    hdr = _walk_meta(buf, size, start, final) if preamble is not None else None
    if hdr is None:
        hdr = _walk(buf, size, start, explicit, preamble is None, final)
    hdr.preamble = preamble
    if preamble is None and hdr.status == OK:
        # No Part 10 header at all, not even File Meta without the preamble (group 0002 first).
        hdr.raw = not (buf[start] == 0x02 and buf[start + 1] == 0x00)
    return hdr


def _need_or(buf: bytes, size: int, want: int, final: bool, reason: str) -> Header:
    if len(buf) < size and not final:
        return Header(NEED_MORE, need=min(size, max(want, 2 * len(buf))))
    return _fail(MALFORMED, reason)


# ---- archives and compressed streams -------------------------------------------------------------
ARCHIVE_ZIP: Final = "zip"  # PKWARE APPNOTE §4.3.7 local file header / §4.3.16 empty archive
ARCHIVE_GZIP: Final = "gzip"  # RFC 1952 §2.3.1
ARCHIVE_BZIP2: Final = "bzip2"
ARCHIVE_XZ: Final = "xz"  # .xz file format §2.1.1.1
ARCHIVE_TAR: Final = "tar"  # POSIX.1-2001 ustar: "ustar" at offset 257
ARCHIVE_KINDS: Final = (ARCHIVE_ZIP, ARCHIVE_GZIP, ARCHIVE_BZIP2, ARCHIVE_XZ, ARCHIVE_TAR)


def archive_kind(buf: bytes) -> str:
    """The archive or compression format ``buf`` (a file prefix) starts with, or ""."""
    n = len(buf)
    if n >= 4:
        b0 = buf[0]
        if (
            b0 == 0x50
            and buf[1] == 0x4B
            and (
                (buf[2] == 3 and buf[3] == 4)
                or (buf[2] == 5 and buf[3] == 6)
                or (buf[2] == 7 and buf[3] == 8)
            )
        ):
            return ARCHIVE_ZIP
        if b0 == 0x1F and buf[1] == 0x8B and buf[2] == 8:
            return ARCHIVE_GZIP
        if b0 == 0x42 and buf[1] == 0x5A and buf[2] == 0x68 and 0x31 <= buf[3] <= 0x39:
            return ARCHIVE_BZIP2
        if n >= 6 and b0 == 0xFD and buf[1:6] == b"7zXZ\x00":
            return ARCHIVE_XZ
    if n >= 262 and buf[257:262] == b"ustar":
        return ARCHIVE_TAR
    return ""


# ---- data sets without a Part 10 header ---------------------------------------------------------
# Encodings of a guessed data set (PS3.5 §7.1 and §7.3), the low 2 bits of guess_dataset().
_ENC_IMPLICIT_LE: Final = 0
_ENC_EXPLICIT_LE: Final = 1
_ENC_EXPLICIT_BE: Final = 2
_ENC_IMPLICIT_BE: Final = 3
#: Bytes of junk tolerated before a raw data set (pydicom's own no_meta.dcm has one stray byte).
_MAX_GUESS_OFFSET: Final = 8
#: Elements checked in a row; a data set shorter than that must end exactly at the end of the file.
_GUESS_ELEMENTS: Final = 4
#: Longest first value accepted (group length, character set, image type, SOP class...).
_GUESS_FIRST_LENGTH: Final = 1024


def guess_dataset(buf: bytes, size: int) -> int:
    """Where a data set without preamble and File Meta starts in ``buf``, and how it is encoded:
    ``offset << 2 | encoding`` (implicit/explicit VR, little/big endian), or -1 if none fits.

    A raw data set (a dataset written without Part 10 header, or an ACR-NEMA 1.0/2.0 file) is
    recognised by content: a first element in group 0002, 0004, 0008 or 0010 (file meta, directory,
    identifying, patient) with a small element number, then a chain of elements whose tags ascend
    (PS3.5 §7.1: elements are in increasing tag order) and whose VRs (explicit) and lengths are
    consistent and end inside the file. Bounded: a few elements at a few offsets.
    """
    n = len(buf)
    last = min(_MAX_GUESS_OFFSET, n - 8)
    off = 0
    while off <= last:
        if buf[off] == 0 or buf[off + 1] == 0:  # one byte of the first group number is zero
            for encoding in (_ENC_EXPLICIT_LE, _ENC_IMPLICIT_LE, _ENC_EXPLICIT_BE, _ENC_IMPLICIT_BE):
                if _chain(buf, size, off, encoding):
                    return off << 2 | encoding
        off += 1
    return -1


def _chain(buf: bytes, size: int, pos: int, encoding: int) -> bool:
    n = min(len(buf), size)
    big = encoding >= _ENC_EXPLICIT_BE
    explicit = encoding in (_ENC_EXPLICIT_LE, _ENC_EXPLICIT_BE)
    prev = -1
    count = 0
    while count < _GUESS_ELEMENTS:
        if pos == size and count >= 1:
            return True  # a short data set that ends exactly at the end of the file
        if pos + 8 > n:
            return count >= 2
        if big:
            group = buf[pos] << 8 | buf[pos + 1]
            elem = buf[pos + 2] << 8 | buf[pos + 3]
        else:
            group = buf[pos] | buf[pos + 1] << 8
            elem = buf[pos + 2] | buf[pos + 3] << 8
        tag = group << 16 | elem
        if count == 0:
            if group != 0x0008 and group != 0x0010 and group != 0x0002 and group != 0x0004:
                return False
            if elem > (0x1200 if group == 0x0004 else 0x0100):
                return False
        elif tag <= prev or group > 0x7FE0:
            return False
        prev = tag
        if explicit:
            kind = _VR_KIND[buf[pos + 4] << 8 | buf[pos + 5]]
            if not kind:
                return False
            if kind == _SHORT:
                length = buf[pos + 6] << 8 | buf[pos + 7] if big else buf[pos + 6] | buf[pos + 7] << 8
                pos += 8
            else:
                if buf[pos + 6] or buf[pos + 7] or pos + 12 > n:  # 2 reserved bytes (PS3.5 §7.1.2)
                    return False
                if big:
                    length = buf[pos + 8] << 24 | buf[pos + 9] << 16 | buf[pos + 10] << 8 | buf[pos + 11]
                else:
                    length = _u32(buf, pos + 8)
                pos += 12
                if kind == _SEQ or length == UNDEFINED:
                    return count >= 1  # a sequence: its items are not followed here
        else:
            if big:
                length = buf[pos + 4] << 24 | buf[pos + 5] << 16 | buf[pos + 6] << 8 | buf[pos + 7]
            else:
                length = _u32(buf, pos + 4)
            pos += 8
            if length == UNDEFINED:
                return count >= 1
        if count == 0 and length > _GUESS_FIRST_LENGTH:
            return False
        pos += length
        if pos > size:
            return False
        count += 1
    return True


def _walk(buf: bytes, size: int, pos: int, explicit: bool, guessed: bool, final: bool) -> Header:
    """The general walk: any file, from its first element (file meta or data set).

    Guessed (preamble-less) files and whatever :func:`_walk_meta` declines are walked here from
    start to end; a Part 10 file whose meta ends at top level is handed to a fast walk there.
    """
    n = len(buf)
    limit = min(n, size)
    stop = limit - 8  # last offset where an 8-byte element header still fits
    # Open containers: (end offset or UNDEFINED, is_item). ``depth`` counts sequences.
    stack: list[tuple[int, bool]] = []
    depth = 0
    listed: list[int] = []
    private = 0
    repeating = False
    values = _new_values()
    groups = _TABLES.groups
    vr_kinds = _VR_KIND
    prev_tag = -1
    elements = 0
    # File Meta Information (group 0002) is always explicit VR LE (PS3.10 §7.1).
    meta = limit >= pos + 2 and buf[pos] == 0x02 and buf[pos + 1] == 0x00
    in_explicit = True if meta else explicit

    while True:
        if pos > stop:
            if pos == size and not stack:
                break  # the whole dataset, no pixel data
            if limit < size and not final:
                return Header(NEED_MORE, need=min(size, max(pos + 4096, 2 * n)))
            if final and limit < size and elements > 0:
                return _result(pos, listed, private, values, partial=True, repeating=repeating)
            if guessed and elements == 0:
                return _fail(NOT_DICOM, "no-dicom-signature")
            if elements > 0:  # the file ends inside an element header or an open container
                return _cut(pos, listed, private, values, repeating)
            return _fail(MALFORMED, "truncated")
        group = buf[pos] | buf[pos + 1] << 8
        elem = buf[pos + 2] | buf[pos + 3] << 8
        if group == 0xFFFE:
            failure = _delimiter(buf, pos, size, elem, stack)
            if failure:
                if failure == _PAST_END:
                    return _cut(pos, listed, private, values, repeating)
                return _fail(MALFORMED, failure)
            if elem == 0xE0DD:
                depth -= 1
            pos += 8
            prev_tag = -1
        else:
            tag = group << 16 | elem
            vrc = buf[pos + 4] << 8 | buf[pos + 5]
            if meta and group != 0x0002:
                meta = False
                ts = values[_S_TRANSFER_SYNTAX]
                if ts is not None and ts in _TS_UNSUPPORTED:
                    return _fail(UNSUPPORTED, "transfer-syntax")
                # The data set's first element says which VR encoding it uses, whatever the
                # transfer syntax claims (writers get it wrong; pydicom reads by content too).
                in_explicit = vr_kinds[vrc] != 0
                prev_tag = -1
                if not stack and not guessed:
                    # The data set proper, at top level: the common case gets the fast walks.
                    if in_explicit:
                        return _walk_explicit(buf, size, pos, final, listed, private, values, repeating)
                    return _walk_implicit(buf, size, pos, final, listed, private, values, repeating)
            if not depth:
                if tag >= _PIXEL_FIRST:
                    break
            elif not stack[-1][1]:
                return _fail(MALFORMED, "element-outside-item")
            cls = groups[group][elem >> 8][elem & 0xFF]
            if in_explicit:
                kind = vr_kinds[vrc]
                if not kind:
                    return _fail(NOT_DICOM if guessed and elements < 2 else MALFORMED, "bad-vr")
                if kind != _SHORT:
                    if pos + 12 > limit:
                        return _more(buf, size, pos + 4096, final, pos, listed, private, values, repeating)
                    length = _u32(buf, pos + 8)
                    pos += 12
                    is_seq = kind == _SEQ
                else:
                    length = buf[pos + 6] | buf[pos + 7] << 8
                    pos += 8
                    is_seq = False
            else:
                length = _u32(buf, pos + 4)
                pos += 8
                is_seq = length == UNDEFINED or cls & _SQ_BIT != 0
                vrc = 0
            if guessed:
                if tag <= prev_tag:
                    return _fail(NOT_DICOM if elements < 2 else MALFORMED, "tags-out-of-order")
                prev_tag = tag
            elements += 1
            if length == UNDEFINED:
                if not is_seq:
                    # PS3.5 §6.2.2: UN of undefined length is a sequence in implicit VR.
                    if vrc == _VR_UN:
                        return _fail(UNSUPPORTED, "undefined-length-un")
                    return _fail(MALFORMED, "undefined-length-value")
                end = UNDEFINED
            else:
                end = pos + length
                if end > size:
                    return _cut(pos, listed, private, values, repeating)
            if length:
                if group & 1:
                    if elem:
                        private += 1
                elif cls & _NAMED:
                    if cls & _LISTED and (length > 2 or is_seq or not _blank(buf, pos, end)):
                        listed.append(tag)
                    if cls & _VALUE and not depth:
                        if is_seq:
                            values[cls >> _SLOT_SHIFT] = b"Y"
                        elif end > limit:
                            return _more(
                                buf, size, end + 4096, final, pos, listed, private, values, repeating
                            )
                        else:
                            values[cls >> _SLOT_SHIFT] = _value(buf, pos, length)
                elif (group & 0xFF00) in (0x5000, 0x6000):
                    listed.append(tag)
                    repeating = True
            if is_seq:
                if length:
                    depth += 1
                    if depth > MAX_DEPTH:
                        return _fail(MALFORMED, "nesting-too-deep")
                    stack.append((end, False))
            else:
                pos = end
        # Close defined-length containers that end here.
        while stack and pos >= stack[-1][0]:
            end, is_item = stack.pop()
            if pos > end:
                return _fail(MALFORMED, "item-overrun")
            if not is_item:
                depth -= 1

    return _result(pos, listed, private, values, partial=False, repeating=repeating)


def _walk_meta(buf: bytes, size: int, pos: int, final: bool) -> Header | None:
    """The file meta group of a Part 10 file, then the data set with a fast walk.

    Handles only the plain case (top-level group 0002 elements of defined length, no sequence,
    all within the prefix) and returns None for anything else, so that :func:`_walk` redoes the
    file from the start and decides. At the first element of another group it settles the transfer
    syntax exactly as :func:`_walk` does and hands the data set to :func:`_walk_explicit` or
    :func:`_walk_implicit`.
    """
    limit = min(len(buf), size)
    stop = limit - 8
    listed: list[int] = []
    values = _new_values()
    meta_chunks = _TABLES.groups[0x0002]
    while pos <= stop:
        group = buf[pos] | buf[pos + 1] << 8
        kind = _VR_KIND[buf[pos + 4] << 8 | buf[pos + 5]]
        if group != 0x0002:
            if group == 0xFFFE:
                return None
            ts = values[_S_TRANSFER_SYNTAX]
            if ts is not None and ts in _TS_UNSUPPORTED:
                return _fail(UNSUPPORTED, "transfer-syntax")
            # By content, as in _walk.
            if kind != 0:
                return _walk_explicit(buf, size, pos, final, listed, 0, values, False)
            return _walk_implicit(buf, size, pos, final, listed, 0, values, False)
        elem = buf[pos + 2] | buf[pos + 3] << 8
        if kind == 0 or kind == _SEQ:
            return None
        if kind == _LONG:
            if pos + 12 > limit:
                return None
            length = _u32(buf, pos + 8)
            pos += 12
        else:
            length = buf[pos + 6] | buf[pos + 7] << 8
            pos += 8
        end = pos + length
        if length == UNDEFINED or end > size:
            return None
        if length:
            cls = meta_chunks[elem >> 8][elem & 0xFF]
            if cls & _LISTED and (length > 2 or not _blank(buf, pos, end)):
                listed.append(0x00020000 | elem)
            if cls & _VALUE:
                if end > limit:
                    return None
                values[cls >> _SLOT_SHIFT] = _value(buf, pos, length)
        pos = end
    return None


def _walk_explicit(
    buf: bytes,
    size: int,
    pos: int,
    final: bool,
    listed: list[int],
    private: int,
    values: list[bytes | None],
    repeating: bool,
) -> Header:
    """:func:`_walk` for an explicit VR little endian data set after its file meta, unrolled.

    The same checks in the same order as :func:`_walk`, with the per-element work cut down to a
    few byte reads, one VR table read, one tag-class table read and a handful of comparisons of
    small ints. Containers are tracked through ``top`` (end of the innermost one) and ``guard``
    (see :data:`_PIXEL_GROUP`), so the stack is only touched when a sequence or item opens or
    closes.
    """
    limit = min(len(buf), size)
    stop = limit - 8
    stack: list[tuple[int, bool]] = []
    depth = 0
    no_end = limit + 1  # past every element header: the close step is a no-op there
    top = no_end
    guard = _PIXEL_GROUP
    vr_kinds = _VR_KIND
    groups = _TABLES.groups
    while pos <= stop:
        group = buf[pos] | buf[pos + 1] << 8
        elem = buf[pos + 2] | buf[pos + 3] << 8
        if group == 0xFFFE:
            failure = _delimiter(buf, pos, size, elem, stack)
            if failure:
                if failure == _PAST_END:
                    return _cut(pos, listed, private, values, repeating)
                return _fail(MALFORMED, failure)
            if elem == 0xE0DD:
                depth -= 1
            pos += 8
        else:
            if group >= guard:
                if depth:
                    return _fail(MALFORMED, "element-outside-item")
                if group > 0x7FE0 or elem >= 8:  # the tag is Pixel Data's or beyond
                    return _result(pos, listed, private, values, partial=False, repeating=repeating)
            cls = groups[group][elem >> 8][elem & 0xFF]
            vrc = buf[pos + 4] << 8 | buf[pos + 5]
            kind = vr_kinds[vrc]
            if kind == _SHORT:
                # 16-bit length, never a sequence, never undefined. An empty value is never
                # counted; an empty wanted value reads as absent in _result.
                length = buf[pos + 6] | buf[pos + 7] << 8
                pos += 8
                end = pos + length
                if end > size:
                    return _cut(pos, listed, private, values, repeating)
                if cls & _NAMED:
                    if cls & _LISTED and (length > 2 or not _blank(buf, pos, end)):
                        listed.append(group << 16 | elem)
                    if cls & _VALUE and not depth:
                        if end > limit:
                            return _more(
                                buf, size, end + 4096, final, pos, listed, private, values, repeating
                            )
                        values[cls >> _SLOT_SHIFT] = _value(buf, pos, length)
                elif group & 1:
                    if elem and length:
                        private += 1
                elif group >= 0x5000 and length and (group & 0xFF00) in (0x5000, 0x6000):
                    listed.append(group << 16 | elem)
                    repeating = True
                pos = end
                if pos < top:
                    continue
            else:
                if not kind:
                    return _fail(MALFORMED, "bad-vr")
                if pos + 12 > limit:
                    return _more(buf, size, pos + 4096, final, pos, listed, private, values, repeating)
                length = buf[pos + 8] | buf[pos + 9] << 8 | buf[pos + 10] << 16 | buf[pos + 11] << 24
                pos += 12
                is_seq = kind == _SEQ
                if length == UNDEFINED:
                    if not is_seq:
                        if vrc == _VR_UN:
                            return _fail(UNSUPPORTED, "undefined-length-un")
                        return _fail(MALFORMED, "undefined-length-value")
                    end = UNDEFINED
                else:
                    end = pos + length
                    if end > size:
                        return _cut(pos, listed, private, values, repeating)
                if length:
                    if cls & _NAMED:
                        if cls & _LISTED and (length > 2 or is_seq or not _blank(buf, pos, end)):
                            listed.append(group << 16 | elem)
                        if cls & _VALUE and not depth:
                            if is_seq:
                                values[cls >> _SLOT_SHIFT] = b"Y"
                            elif end > limit:
                                return _more(
                                    buf, size, end + 4096, final, pos, listed, private, values, repeating
                                )
                            else:
                                values[cls >> _SLOT_SHIFT] = _value(buf, pos, length)
                    elif group & 1:
                        if elem:
                            private += 1
                    elif group >= 0x5000 and (group & 0xFF00) in (0x5000, 0x6000):
                        listed.append(group << 16 | elem)
                        repeating = True
                if not is_seq:
                    pos = end
                    if pos < top:
                        continue
                elif length:
                    depth += 1
                    if depth > MAX_DEPTH:
                        return _fail(MALFORMED, "nesting-too-deep")
                    stack.append((end, False))
                    top = end
                    guard = 0  # directly inside a sequence: only an item may come
                    continue
                elif pos < top:
                    continue
        # A delimiter was read or a defined-length container ends here.
        closed = _close(stack, pos)
        if closed < 0:
            return _fail(MALFORMED, "item-overrun")
        depth -= closed
        if stack:
            top = stack[-1][0]
            guard = _NO_GROUP if stack[-1][1] else 0
        else:
            top = no_end
            guard = _PIXEL_GROUP
    return _end_of_prefix(buf, size, pos, final, stack, listed, private, values, repeating)


def _walk_implicit(
    buf: bytes,
    size: int,
    pos: int,
    final: bool,
    listed: list[int],
    private: int,
    values: list[bytes | None],
    repeating: bool,
) -> Header:
    """:func:`_walk_explicit` for implicit VR little endian: a sequence is recognised by its
    undefined length or by its tag's dictionary VR (:data:`_SQ_BIT`)."""
    limit = min(len(buf), size)
    stop = limit - 8
    stack: list[tuple[int, bool]] = []
    depth = 0
    no_end = limit + 1  # past every element header: the close step is a no-op there
    top = no_end
    guard = _PIXEL_GROUP
    groups = _TABLES.groups
    while pos <= stop:
        group = buf[pos] | buf[pos + 1] << 8
        elem = buf[pos + 2] | buf[pos + 3] << 8
        if group == 0xFFFE:
            failure = _delimiter(buf, pos, size, elem, stack)
            if failure:
                if failure == _PAST_END:
                    return _cut(pos, listed, private, values, repeating)
                return _fail(MALFORMED, failure)
            if elem == 0xE0DD:
                depth -= 1
            pos += 8
        else:
            if group >= guard:
                if depth:
                    return _fail(MALFORMED, "element-outside-item")
                if group > 0x7FE0 or elem >= 8:  # the tag is Pixel Data's or beyond
                    return _result(pos, listed, private, values, partial=False, repeating=repeating)
            length = buf[pos + 4] | buf[pos + 5] << 8 | buf[pos + 6] << 16 | buf[pos + 7] << 24
            pos += 8
            cls = groups[group][elem >> 8][elem & 0xFF]
            if length == UNDEFINED:
                is_seq = True
                end = UNDEFINED
            else:
                is_seq = cls & _SQ_BIT != 0
                end = pos + length
                if end > size:
                    return _cut(pos, listed, private, values, repeating)
            if length:
                if cls & _NAMED:
                    if cls & _LISTED and (length > 2 or is_seq or not _blank(buf, pos, end)):
                        listed.append(group << 16 | elem)
                    if cls & _VALUE and not depth:
                        if is_seq:
                            values[cls >> _SLOT_SHIFT] = b"Y"
                        elif end > limit:
                            return _more(
                                buf, size, end + 4096, final, pos, listed, private, values, repeating
                            )
                        else:
                            values[cls >> _SLOT_SHIFT] = _value(buf, pos, length)
                elif group & 1:
                    if elem:
                        private += 1
                elif group >= 0x5000 and (group & 0xFF00) in (0x5000, 0x6000):
                    listed.append(group << 16 | elem)
                    repeating = True
            if not is_seq:
                pos = end
                if pos < top:
                    continue
            elif length:
                depth += 1
                if depth > MAX_DEPTH:
                    return _fail(MALFORMED, "nesting-too-deep")
                stack.append((end, False))
                top = end
                guard = 0
                continue
            elif pos < top:
                continue
        closed = _close(stack, pos)
        if closed < 0:
            return _fail(MALFORMED, "item-overrun")
        depth -= closed
        if stack:
            top = stack[-1][0]
            guard = _NO_GROUP if stack[-1][1] else 0
        else:
            top = no_end
            guard = _PIXEL_GROUP
    return _end_of_prefix(buf, size, pos, final, stack, listed, private, values, repeating)


def _close(stack: list[tuple[int, bool]], pos: int) -> int:
    """Pop the defined-length containers that end at ``pos``: sequences closed, or -1 on overrun."""
    closed = 0
    while stack and pos >= stack[-1][0]:
        end, is_item = stack.pop()
        if pos > end:
            return -1
        if not is_item:
            closed += 1
    return closed


def _end_of_prefix(
    buf: bytes,
    size: int,
    pos: int,
    final: bool,
    stack: list[tuple[int, bool]],
    listed: list[int],
    private: int,
    values: list[bytes | None],
    repeating: bool,
) -> Header:
    """No element header fits before the end of the prefix (the fast walks' loop exit)."""
    limit = min(len(buf), size)
    if pos == size and not stack:
        return _result(pos, listed, private, values, partial=False, repeating=repeating)
    if limit < size and not final:
        return Header(NEED_MORE, need=min(size, max(pos + 4096, 2 * len(buf))))
    if final and limit < size:  # the file meta was read: at least one element
        return _result(pos, listed, private, values, partial=True, repeating=repeating)
    return _cut(pos, listed, private, values, repeating)


_PAST_END: Final = "length-past-end"


def _cut(pos: int, listed: list[int], private: int, values: list[bytes | None], repeating: bool) -> Header:
    """The file ends inside its header (a value, item or sequence runs past the end of the file):
    what stands before the cut is counted, and the header is marked truncated, not malformed."""
    hdr = _result(pos, listed, private, values, partial=False, repeating=repeating)
    hdr.truncated = True
    return hdr


def _more(
    buf: bytes,
    size: int,
    want: int,
    final: bool,
    pos: int,
    listed: list[int],
    private: int,
    values: list[bytes | None],
    repeating: bool,
) -> Header:
    """The walk needs bytes past the prefix: ask for them, or with ``final`` (a read bound) count
    what was walked as a partial header; if the prefix is the whole file, the file is cut."""
    if len(buf) < size:
        if not final:
            return Header(NEED_MORE, need=min(size, max(want, 2 * len(buf))))
        return _result(pos, listed, private, values, partial=True, repeating=repeating)
    return _cut(pos, listed, private, values, repeating)


def _delimiter(buf: bytes, pos: int, size: int, elem: int, stack: list[tuple[int, bool]]) -> str:
    """Handle an item or delimiter tag (PS3.5 §7.5). Returns a failure reason or ""."""
    length = _u32(buf, pos + 4)
    if elem == 0xE000:
        if not stack or stack[-1][1]:
            return "item-outside-sequence"
        if length == UNDEFINED:
            stack.append((UNDEFINED, True))
        elif pos + 8 + length > size:
            return _PAST_END
        else:
            stack.append((pos + 8 + length, True))
        return ""
    if elem == 0xE00D:
        if not stack or not stack[-1][1] or stack[-1][0] != UNDEFINED:
            return "bad-delimiter"
        stack.pop()
        return ""
    if elem == 0xE0DD:
        if not stack or stack[-1][1] or stack[-1][0] != UNDEFINED:
            return "bad-delimiter"
        stack.pop()
        return ""
    return "bad-delimiter"


def _unique(listed: list[int]) -> tuple[int, ...]:
    """The tags once each, in file order: nested items may repeat a tag (one line per attribute).
    Tags in ascending order (the usual case) cannot repeat and skip the dedup."""
    prev = -1
    for tag in listed:
        if tag <= prev:
            return tuple(dict.fromkeys(listed))
        prev = tag
    return tuple(listed)


def _yes(value: bytes | None) -> bool:
    return value is not None and value.upper() == b"YES"


def _result(
    pos: int,
    listed: list[int],
    private: int,
    values: list[bytes | None],
    *,
    partial: bool,
    repeating: bool = False,
) -> Header:
    hdr = Header(OK)
    hdr.header_end = pos
    hdr.partial = partial
    tags = _unique(listed)
    if repeating:
        # Repeating groups count only where Annex E lists them (50xx curves, 60xx overlay data).
        listed_in_annex = _TABLES.annex_listed
        tags = tuple(t for t in tags if listed_in_annex(t))
    hdr.phi_tags = tags
    hdr.private_tags = private
    hdr.patient = values[_S_PATIENT_ID] or values[_S_PATIENT_NAME] or None
    hdr.study = values[_S_STUDY_UID] or None
    date = values[_S_STUDY_DATE]
    if date and len(date) >= 4 and date[:4].isdigit():
        year = int(date[:4])
        if 1850 <= year <= 2200:
            hdr.year = year
    hdr.modality = values[_S_MODALITY] or None
    hdr.burned_in = _yes(values[_S_BURNED_IN])
    hdr.identity_removed = _yes(values[_S_IDENTITY_REMOVED])
    hdr.deid_method = bool(values[_S_DEID_METHOD] or values[_S_DEID_METHOD_CODES])
    sop = values[_S_MEDIA_SOP_CLASS] or values[_S_SOP_CLASS]
    hdr.dicomdir = sop == DICOMDIR_SOP_CLASS
    recognition = values[_S_RECOGNITION]
    hdr.acr_nema = recognition is not None and recognition.startswith(b"ACR-NEMA")
    return hdr


# ---- the per-batch reader ----------------------------------------------------------------------
# Non-blocking, so that a FIFO or device swapped in after the walk cannot hang a read; no symlink
# is followed unless asked (O_NOFOLLOW).
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_ZERO_PREAMBLE: Final = bytes(128)


def special_kind(mode: int) -> str:
    """Why a file that is not a regular file was not read."""
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special"


def os_reason(exc: OSError) -> str:
    """A count key for an OS error (never its message: that would quote the path)."""
    if exc.errno == errno.ELOOP:
        return "symlink"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "vanished"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission-denied"
    return "io-error"


class Counts:
    """What :func:`read_files` counted for one batch; folded into a ``Tally`` by the caller.

    The raw identifiers (``patients``, ``studies``) and raw Modality values are PHI or may be:
    they stay in the process that read them and are replaced by keyed hashes (modality codes) in
    ``Tally.add_counts``/``Tally.seal`` before anything leaves it.
    """

    def __init__(self) -> None:
        self.files_seen = 0
        self.dicom_files = 0
        self.dicomdir_files = 0
        self.not_dicom = 0
        self.bytes_dicom = 0
        self.bytes_read = 0
        self.phi_files = 0
        self.phi_lines_total = 0
        self.phi_lines_max = 0
        self.private_files = 0
        self.private_tags = 0
        self.burned_in = 0
        self.identity_removed = 0
        self.deid_method = 0
        self.partial_headers = 0
        #: Files that end inside their header (counted up to the cut).
        self.truncated_files = 0
        #: Data sets without Part 10 header (raw, ACR-NEMA), and ACR-NEMA files among them.
        self.raw_datasets = 0
        self.acr_nema_files = 0
        #: Archives counted as not DICOM because archives were not to be opened.
        self.archives_unopened = 0
        self.pydicom_fallback = 0
        self.zero_preambles = 0
        self.no_preambles = 0
        self.year_min = -1  # -1: no year yet (years are 1850..2200)
        self.year_max = -1
        self.skipped: dict[str, int] = {}
        self.malformed: dict[str, int] = {}
        #: How many files carried each distinct set of Annex E tags, as a one-item list: a
        #: repeat (the common case) costs one hash of the tuple, not two (get, then set).
        self.signatures: dict[tuple[int, ...], list[int]] = {}
        self.modalities: dict[bytes, int] = {}
        self.patients: set[bytes] = set()
        self.studies: set[bytes] = set()

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def add(self, hdr: Header, size: int, count_preamble: bool = True) -> None:
        """Count one parsed file. The batch reader calls this for files that need no path token
        and no preamble check (see :func:`needs_python`); ``Tally.add_header`` calls it for the
        others with ``count_preamble=False``, after classifying the preamble itself. One place
        counts, so the compiled and the Python path cannot drift apart."""
        status = hdr.status
        if status == NOT_DICOM:
            self.not_dicom += 1
            return
        if status == ARCHIVE:
            self.not_dicom += 1
            self.archives_unopened += 1
            return
        if status != OK:
            reason = hdr.reason or "malformed"
            self.malformed[reason] = self.malformed.get(reason, 0) + 1
            return
        self.dicom_files += 1
        self.bytes_dicom += size
        if hdr.dicomdir:
            self.dicomdir_files += 1
        if hdr.partial:
            self.partial_headers += 1
        if hdr.truncated:
            self.truncated_files += 1
        if hdr.raw:
            self.raw_datasets += 1
            if hdr.acr_nema:
                self.acr_nema_files += 1
        if count_preamble:
            if hdr.preamble is None:
                self.no_preambles += 1
            else:
                self.zero_preambles += 1
        tags = hdr.phi_tags
        lines = len(tags)
        if lines:
            self.phi_files += 1
            self.phi_lines_total += lines
            if lines > self.phi_lines_max:
                self.phi_lines_max = lines
            seen = self.signatures.get(tags)
            if seen is None:
                self.signatures[tags] = [1]
            else:
                seen[0] += 1
        if hdr.private_tags:
            self.private_files += 1
            self.private_tags += hdr.private_tags
        if hdr.burned_in:
            self.burned_in += 1
        if hdr.identity_removed:
            self.identity_removed += 1
        if hdr.deid_method:
            self.deid_method += 1
        patient = hdr.patient
        if patient:
            self.patients.add(patient)
        study = hdr.study
        if study:
            self.studies.add(study)
        modality = hdr.modality
        if modality is not None:
            self.modalities[modality] = self.modalities.get(modality, 0) + 1
        year = hdr.year
        if year is not None:
            if self.year_min < 0 or year < self.year_min:
                self.year_min = year
            if year > self.year_max:
                self.year_max = year


def needs_python(hdr: Header, show_paths: bool, archives: bool = False) -> bool:
    """Whether a parsed file goes to the ``slow`` callback: it is listed by path token (malformed
    and truncated files when paths are shown), its preamble is neither absent nor all zero (PS3.10 §7.1: the
    preamble check, CVE-2019-11687, stays in Python), or it is an archive to open."""
    status = hdr.status
    if status == OK:
        if hdr.truncated and show_paths:
            return True
        preamble = hdr.preamble
        return preamble is not None and preamble != _ZERO_PREAMBLE
    if status == ARCHIVE:
        return archives
    return status != NOT_DICOM and show_paths


def read_files(
    paths: list[str],
    follow_symlinks: bool,
    show_paths: bool,
    header_read: int,
    max_header_bytes: int,
    counts: Counts,
    fallback: Callable[[bytes, int], Header],
    slow: Callable[[int, Header, int, bytes], None],
    archives: bool = False,
) -> None:
    """Audit ``paths`` into ``counts``. Never raises for a bad file: each is counted with a reason.

    Each file is opened without following symlinks (unless asked) and without blocking, checked to
    be a regular file on the open descriptor (a file swapped after the walk is judged as it is
    now), and read in prefixes: ``header_read`` bytes first, more only while the header goes on,
    never more than ``max_header_bytes``. Encodings the walker leaves alone go to ``fallback``
    (pydicom). ``slow(index, header, size, prefix)`` gets the files of :func:`needs_python`,
    archives among them when ``archives`` is set (else an archive counts as not DICOM).
    """
    flags = _OPEN_FLAGS | (0 if follow_symlinks else _NOFOLLOW)
    index = 0
    for path in paths:
        counts.files_seen += 1
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            counts.skip(os_reason(exc))
            index += 1
            continue
        read = _read_open(fd, header_read, max_header_bytes, counts, fallback)
        if read is not None:
            hdr, size, buf = read
            if needs_python(hdr, show_paths, archives):
                slow(index, hdr, size, buf)
            else:
                counts.add(hdr, size)
        index += 1


def _seek_size(fd: int) -> int:
    """The size of the open file ``fd`` by seeking to its end, or -1 if it cannot seek."""
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        return -1


def _read_open(
    fd: int,
    header_read: int,
    max_header_bytes: int,
    counts: Counts,
    fallback: Callable[[bytes, int], Header],
) -> tuple[Header, int, bytes] | None:
    """Read and walk the open file ``fd`` and close it: (header, file size, prefix read), or None
    if the file was skipped (and counted)."""
    try:
        # No fstat per file (its stat_result costs about 2 us, a tenth of the audit): the first
        # pread sizes a file shorter than it, lseek(SEEK_END) a longer one (an int, one cheap
        # syscall). A FIFO, socket or terminal swapped in after the walk cannot pread or seek
        # (ESPIPE), a directory cannot read (EISDIR); those, an empty read and anything unusual are
        # judged by fstat on the open descriptor, as before.
        try:
            buf = os.pread(fd, header_read, 0)
        except OSError as exc:
            if exc.errno != errno.ESPIPE and exc.errno != errno.EISDIR:
                raise
            buf = b""
        size = len(buf)
        if size >= header_read:
            size = _seek_size(fd)
        if size <= 0 or size < len(buf):
            st = os.fstat(fd)
            mode = st.st_mode
            if not stat.S_ISREG(mode):
                counts.skip(special_kind(mode))
                return None
            size = st.st_size
            if size == 0:
                counts.skip("empty")
                return None
            if not buf:
                buf = os.pread(fd, min(size, header_read), 0)
        hdr = parse(buf, size)
        while hdr.status == NEED_MORE:
            want = min(hdr.need, max_header_bytes, size)
            if want <= len(buf):
                hdr = parse(buf, size, final=True)
                break
            more = os.pread(fd, want - len(buf), len(buf))
            if not more:  # the file shrank under us
                hdr = parse(buf, size, final=True)
                break
            buf += more
            hdr = parse(buf, size)
        if hdr.status == UNSUPPORTED:
            counts.pydicom_fallback += 1
            bound = min(size, max_header_bytes)
            if len(buf) < bound:
                buf += os.pread(fd, bound - len(buf), len(buf))
            hdr = fallback(buf, size)
        counts.bytes_read += len(buf)
    except OSError as exc:
        counts.skip(os_reason(exc))
        return None
    finally:
        os.close(fd)
    return hdr, size, buf


# ---- the tree walker (parent process) -----------------------------------------------------------


class TreeWalker:
    """Iterative directory walk for the local audit; symlinks are counted, or followed with loop
    detection. ``os.scandir`` gives each entry's type without a stat per file; ``max_files`` of
    -1 means no bound. What was not walked is counted in ``skipped``, bounds hit in ``truncated``.
    """

    def __init__(self, root: str, max_depth: int, max_files: int, follow_symlinks: bool) -> None:
        self.root = root
        self.max_depth = max_depth
        self.max_files = max_files
        self.follow = follow_symlinks
        self.skipped: dict[str, int] = {}
        self.truncated: list[str] = []
        self.yielded = 0

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _limit_reached(self) -> bool:
        if self.max_files >= 0 and self.yielded >= self.max_files:
            if "max_files" not in self.truncated:
                self.truncated.append("max_files")
            return True
        return False

    def batches(self, size: int, first: int = 0) -> Iterator[list[str]]:
        """File paths in lists of ``size``, depth first. With ``first``, the lists start at that
        length and double up to ``size``: every worker gets work at once, and a small tree is
        still shared out."""
        batch: list[str] = []
        want = size if first <= 0 else min(first, size)
        follow = self.follow
        visited: set[tuple[int, int]] = set()
        seen_files: set[tuple[int, int]] = set()
        stack: list[tuple[str, int]] = [(self.root, 0)]
        while stack:
            directory, depth = stack.pop()
            dev = 0
            if follow:
                try:
                    st = os.stat(directory)
                except OSError as exc:
                    self._skip(os_reason(exc))
                    continue
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    self._skip("symlink-loop")
                    continue
                visited.add(key)
                dev = st.st_dev
            try:
                it = os.scandir(directory)
            except OSError as exc:
                self._skip(os_reason(exc))
                continue
            with it:
                while True:
                    try:
                        entry = next(it, None)
                    except OSError as exc:
                        self._skip(os_reason(exc))
                        break
                    if entry is None:
                        break
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if depth + 1 > self.max_depth:
                                self._skip("depth-limit")
                            else:
                                stack.append((entry.path, depth + 1))
                            continue
                        if entry.is_file(follow_symlinks=False):
                            if follow:
                                ident = (dev, entry.inode())
                                if ident in seen_files:
                                    continue
                                seen_files.add(ident)
                            if self._limit_reached():
                                if batch:
                                    yield batch
                                return
                            self.yielded += 1
                            batch.append(entry.path)
                            if len(batch) >= want:
                                yield batch
                                batch = []
                                want = min(2 * want, size)
                            continue
                        if entry.is_symlink():
                            if not follow:
                                self._skip("symlink")
                                continue
                            target = self._follow(entry.path, seen_files)
                            if target == "dir":
                                if depth + 1 > self.max_depth:
                                    self._skip("depth-limit")
                                else:
                                    stack.append((entry.path, depth + 1))
                            elif target == "file":
                                if self._limit_reached():
                                    if batch:
                                        yield batch
                                    return
                                self.yielded += 1
                                batch.append(entry.path)
                                if len(batch) >= want:
                                    yield batch
                                    batch = []
                                    want = min(2 * want, size)
                            continue
                        self._skip(special_kind(entry.stat(follow_symlinks=False).st_mode))
                    except OSError as exc:
                        self._skip(os_reason(exc))
        if batch:
            yield batch

    def _follow(self, path: str, seen_files: set[tuple[int, int]]) -> str:
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._skip("symlink-loop")
            elif exc.errno == errno.ENOENT:
                self._skip("broken-symlink")
            else:
                self._skip(os_reason(exc))
            return ""
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in seen_files:
                return ""
            seen_files.add(ident)
            return "file"
        self._skip(special_kind(st.st_mode))
        return ""


__all__ = [
    "ARCHIVE",
    "ARCHIVE_KINDS",
    "COMPILED",
    "MALFORMED",
    "NEED_MORE",
    "NOT_DICOM",
    "OK",
    "UNSUPPORTED",
    "Counts",
    "Header",
    "TreeWalker",
    "archive_kind",
    "configure",
    "guess_dataset",
    "needs_python",
    "os_reason",
    "parse",
    "read_files",
    "special_kind",
]
