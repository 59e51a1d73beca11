"""A bounded, allocation-light walker for DICOM file headers (everything before Pixel Data).

Why not pydicom for every file: building a ``Dataset`` costs far more than the audit needs. The
audit needs only tags, VRs and lengths (to classify attributes against PS3.15 Annex E) plus a few
values (patient/study identity for keyed hashing, study year, modality, de-identification
markers). This walker reads exactly that from a byte prefix, never recurses (an explicit stack,
bounded depth), and checks every length against the file size, so hostile files cannot make it
allocate, loop or read past the end. Encodings it does not handle (explicit VR big endian,
deflate, implicit-VR file meta) are reported as ``UNSUPPORTED`` so the caller can fall back to
pydicom.

Layout references: PS3.10 §7.1 (128-byte preamble, ``DICM`` prefix, File Meta Information in
explicit VR little endian), PS3.5 §7.1.2/§7.1.3 (explicit/implicit data element encoding),
PS3.5 §7.5 (sequences and items, defined and undefined lengths).
"""

from __future__ import annotations

import struct
from typing import Final

from pydicom.datadict import dictionary_VR, keyword_dict

from pacsradar.files.annex_e import load as _load_annex_e

OK: Final = 0
NOT_DICOM: Final = 1
MALFORMED: Final = 2
NEED_MORE: Final = 3
UNSUPPORTED: Final = 4

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
#: Tags whose dictionary VR is SQ: needed to descend into defined-length sequences in implicit VR.
_SQ_TAGS: Final = frozenset(tag for tag in keyword_dict.values() if dictionary_VR(tag) == "SQ")

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

_ITEM: Final = 0xFFFEE000
_ITEM_DELIM: Final = 0xFFFEE00D
_SEQ_DELIM: Final = 0xFFFEE0DD
_PIXEL_FIRST: Final = 0x7FE00008  # Float Pixel Data; 7FE0,0009 Double, 7FE0,0010 Pixel Data

# Values we read (top level only).
_PATIENT_NAME: Final = 0x00100010
_PATIENT_ID: Final = 0x00100020
_STUDY_UID: Final = 0x0020000D
_STUDY_DATE: Final = 0x00080020
_MODALITY: Final = 0x00080060
_BURNED_IN: Final = 0x00280301
_IDENTITY_REMOVED: Final = 0x00120062
_DEID_METHOD: Final = 0x00120063
_DEID_METHOD_CODES: Final = 0x00120064
_SOP_CLASS: Final = 0x00080016
_MEDIA_SOP_CLASS: Final = 0x00020002
_TRANSFER_SYNTAX: Final = 0x00020010
_WANTED: Final = frozenset(
    {
        _PATIENT_NAME,
        _PATIENT_ID,
        _STUDY_UID,
        _STUDY_DATE,
        _MODALITY,
        _BURNED_IN,
        _IDENTITY_REMOVED,
        _DEID_METHOD,
        _DEID_METHOD_CODES,
        _SOP_CLASS,
        _MEDIA_SOP_CLASS,
        _TRANSFER_SYNTAX,
    }
)
_MAX_VALUE: Final = 256  # longest value we ever copy (LO is 64 chars, UI 64, PN 5x64)

_HDR_EXPLICIT: Final = struct.Struct("<HH2sH")
_HDR_IMPLICIT: Final = struct.Struct("<HHI")
_U32: Final = struct.Struct("<I")


class Header:
    """What the walker learnt from one file. Values are kept in memory only, never rendered."""

    __slots__ = (
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
        "reason",
        "status",
        "study",
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


def parse(buf: bytes, size: int, *, final: bool = False) -> Header:
    """Walk the header in ``buf`` (a prefix of a file of ``size`` bytes).

    Returns ``NEED_MORE`` (with ``need``, the prefix length to read next) when the header goes on
    past ``buf`` and the file is longer. With ``final`` the caller cannot read more (a share's
    byte bound): what was parsed is returned as a partial header.
    """
    n = len(buf)
    if size == 0 or n == 0:
        return _fail(NOT_DICOM, "empty")
    preamble: bytes | None = None
    if n >= 132 and buf[128:132] == b"DICM":
        preamble = buf[:128]
        start = 132
        if n < 140:
            return _need_or(buf, size, 4096, final, "truncated-meta")
        group, _elem, vr, _len = _HDR_EXPLICIT.unpack_from(buf, start)
        if group != 0x0002:
            return _fail(MALFORMED, "no-file-meta")
        if vr not in _VALID_VRS:
            # PS3.10 §7.1 mandates explicit VR LE meta; some writers used implicit VR.
            return _fail(UNSUPPORTED, "implicit-vr-meta")
        explicit = True
    else:
        guessed = _guess_preambleless(buf)
        if guessed is None:
            return _fail(NOT_DICOM, "no-dicom-signature")
        start = 0
        explicit = guessed
    hdr = _walk_meta(buf, size, start, final) if preamble is not None else None
    if hdr is None:
        hdr = _walk(buf, size, start, explicit, preamble is None, final)
    hdr.preamble = preamble
    return hdr


def _need_or(buf: bytes, size: int, want: int, final: bool, reason: str) -> Header:
    if len(buf) < size and not final:
        return Header(NEED_MORE, need=min(size, max(want, 2 * len(buf))))
    return _fail(MALFORMED, reason)


def _guess_preambleless(buf: bytes) -> bool | None:
    """Bounded heuristic for files without preamble (older ACR-NEMA style or raw datasets).

    The first element must be in group 0002, 0004 or 0008 with a small element number, and the
    first two elements must parse with ascending tags. Returns explicit (True) / implicit (False).
    """
    if len(buf) < 16:
        return None
    group, elem, vr, len16 = _HDR_EXPLICIT.unpack_from(buf, 0)
    if group not in (0x0002, 0x0004, 0x0008) or elem > 0x0100:
        return None
    if vr in _VALID_VRS:
        if vr in _LONG_VRS:
            length = _U32.unpack_from(buf, 8)[0]
            nxt = 12 + length
        else:
            nxt = 8 + len16
        explicit = True
    else:
        length = _U32.unpack_from(buf, 4)[0]
        if length > 1024:
            return None
        nxt = 8 + length
        explicit = False
    if nxt + 8 > len(buf):
        return explicit if nxt <= len(buf) else None
    g2, e2 = struct.unpack_from("<HH", buf, nxt)
    if (g2 << 16 | e2) <= (group << 16 | elem) or g2 > 0x7FE0:
        return None
    if explicit and buf[nxt + 4 : nxt + 6] not in _VALID_VRS:
        return None
    return explicit


def _tag_classes() -> dict[int, int]:
    """Tag -> bit set: 1 = listed in Annex E Table E.1-1, 2 = value wanted (top level).

    Odd (private) groups are left out: the walker counts them as private before any lookup.
    """
    classes = dict.fromkeys(_load_annex_e().keywords, _LISTED)
    for tag in _WANTED:
        classes[tag] = classes.get(tag, 0) | _VALUE
    return {tag: cls for tag, cls in classes.items() if not tag >> 16 & 1}


def _implicit_classes() -> dict[int, int]:
    """:data:`_TAG_CLASS` plus bit 4 for tags whose dictionary VR is SQ (implicit VR only)."""
    classes = dict(_TAG_CLASS)
    for tag in _SQ_TAGS:
        classes[tag] = classes.get(tag, 0) | _SQ_BIT
    return classes


_LISTED: Final = 1
_VALUE: Final = 2
_SQ_BIT: Final = 4
_TAG_CLASS: Final = _tag_classes()
_TAG_CLASS_IMPLICIT: Final = _implicit_classes()
# Fast walks: an element whose group is at least the "guard" needs a closer look. At top level
# that is Pixel Data's group (7FE0,0008 onwards ends the header); directly inside a sequence every
# element does (only items belong there); inside an item none does.
_PIXEL_GROUP: Final = _PIXEL_FIRST >> 16
_NO_GROUP: Final = 0x10000
#: Largest int CPython compares on its fast path (one 30-bit digit): test against it first.
_MAX_SMALL: Final = (1 << 30) - 1
_PAD: Final = b" \x00"
_SHORT, _LONG, _SEQ = 0, 1, 2
_VR_KIND: Final = {vr: (_SEQ if vr == b"SQ" else _LONG if vr in _LONG_VRS else _SHORT) for vr in _VALID_VRS}
_SHORT_VRS: Final = _VALID_VRS - _LONG_VRS


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
    values: dict[int, bytes] = {}
    unpack_explicit = _HDR_EXPLICIT.unpack_from
    unpack_u32 = _U32.unpack_from
    vr_kind = _VR_KIND.get
    tag_class = _TAG_CLASS.get
    append = listed.append
    sq_tags = _SQ_TAGS
    pixel_first = _PIXEL_FIRST
    undefined = UNDEFINED
    seq_kind = _SEQ
    is_listed = _LISTED
    wants_value = _VALUE
    max_value = _MAX_VALUE
    prev_tag = -1
    elements = 0
    # File Meta Information (group 0002) is always explicit VR LE (PS3.10 §7.1).
    meta = limit >= pos + 2 and buf[pos : pos + 2] == b"\x02\x00"
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
            return _fail(MALFORMED, "truncated")
        group, elem, vr, len16 = unpack_explicit(buf, pos)
        if group == 0xFFFE:
            failure = _delimiter(buf, pos, size, elem, stack)
            if failure:
                return _fail(MALFORMED, failure)
            if elem == 0xE0DD:
                depth -= 1
            pos += 8
            prev_tag = -1
        else:
            tag = group << 16 | elem
            if meta and group != 0x0002:
                meta = False
                ts = values.get(_TRANSFER_SYNTAX)
                if ts is not None:
                    if ts in _TS_UNSUPPORTED:
                        return _fail(UNSUPPORTED, "transfer-syntax")
                    in_explicit = ts != TS_IMPLICIT_LE
                else:
                    in_explicit = vr in _VR_KIND
                prev_tag = -1
                if not stack and not guessed:
                    # The data set proper, at top level: the common case gets the fast walks.
                    body = _walk_explicit if in_explicit else _walk_implicit
                    return body(buf, size, pos, final, listed, private, values, repeating)
            if not depth:
                if tag >= pixel_first:
                    break
            elif not stack[-1][1]:
                return _fail(MALFORMED, "element-outside-item")
            if in_explicit:
                kind = vr_kind(vr)
                if kind is None:
                    return _fail(NOT_DICOM if guessed and elements < 2 else MALFORMED, "bad-vr")
                if kind:
                    if pos + 12 > limit:
                        return _need_or(buf, size, pos + 4096, final, "truncated")
                    length = unpack_u32(buf, pos + 8)[0]
                    pos += 12
                    is_seq = kind == seq_kind
                else:
                    length = len16
                    pos += 8
                    is_seq = False
            else:
                length = unpack_u32(buf, pos + 4)[0]
                pos += 8
                is_seq = length == undefined or tag in sq_tags
                vr = b""
            if guessed:
                if tag <= prev_tag:
                    return _fail(NOT_DICOM if elements < 2 else MALFORMED, "tags-out-of-order")
                prev_tag = tag
            elements += 1
            if length == undefined:
                if not is_seq:
                    # PS3.5 §6.2.2: UN of undefined length is a sequence in implicit VR.
                    if vr == b"UN":
                        return _fail(UNSUPPORTED, "undefined-length-un")
                    return _fail(MALFORMED, "undefined-length-value")
                end = undefined
            else:
                end = pos + length
                if end > size:
                    return _fail(MALFORMED, "length-past-end")
            if length:
                if group & 1:
                    if elem:
                        private += 1
                else:
                    cls = tag_class(tag)
                    if cls is not None:
                        if cls & is_listed and (length > 2 or is_seq or buf[pos:end].strip(b" \x00")):
                            append(tag)
                        if cls & wants_value and not depth:
                            if is_seq:
                                values[tag] = b"Y"
                            elif end > limit:
                                return _need_or(buf, size, end + 4096, final, "truncated")
                            else:
                                values[tag] = buf[pos : pos + min(length, max_value)].strip(b" \x00")
                    elif (group & 0xFF00) in (0x5000, 0x6000):
                        append(tag)
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
    values: dict[int, bytes] = {}
    unpack = _HDR_EXPLICIT.unpack_from
    vr_kind = _VR_KIND.get
    tag_class = _TAG_CLASS.get
    while pos <= stop:
        group, elem, vr, len16 = unpack(buf, pos)
        if group != 0x0002:
            if group == 0xFFFE:
                return None
            ts = values.get(_TRANSFER_SYNTAX)
            if ts is not None:
                if ts in _TS_UNSUPPORTED:
                    return _fail(UNSUPPORTED, "transfer-syntax")
                explicit = ts != TS_IMPLICIT_LE
            else:
                explicit = vr in _VR_KIND
            body = _walk_explicit if explicit else _walk_implicit
            return body(buf, size, pos, final, listed, 0, values, False)
        kind = vr_kind(vr)
        if kind is None or kind == _SEQ:
            return None
        if kind:
            if pos + 12 > limit:
                return None
            length = _U32.unpack_from(buf, pos + 8)[0]
            pos += 12
        else:
            length = len16
            pos += 8
        end = pos + length
        if length == UNDEFINED or end > size:
            return None
        if length:
            cls = tag_class(0x00020000 | elem)
            if cls is not None:
                if cls & _LISTED and (length > 2 or buf[pos:end].strip(_PAD)):
                    listed.append(0x00020000 | elem)
                if cls & _VALUE:
                    if end > limit:
                        return None
                    values[0x00020000 | elem] = buf[pos : pos + min(length, _MAX_VALUE)].strip(_PAD)
        pos = end
    return None


def _walk_explicit(
    buf: bytes,
    size: int,
    pos: int,
    final: bool,
    listed: list[int],
    private: int,
    values: dict[int, bytes],
    repeating: bool,
) -> Header:
    """:func:`_walk` for an explicit VR little endian data set after its file meta, unrolled.

    The same checks in the same order as :func:`_walk`, with the per-element work cut down to one
    unpack, one VR lookup, one tag lookup and a handful of comparisons of small ints. Containers
    are tracked through ``top`` (end of the innermost one) and ``guard`` (see :data:`_PIXEL_GROUP`),
    so the stack is only touched when a sequence or item opens or closes.
    """
    limit = min(len(buf), size)
    stop = limit - 8
    stack: list[tuple[int, bool]] = []
    depth = 0
    no_end = limit + 1  # past every element header: the close step is a no-op there
    top = no_end
    guard = _PIXEL_GROUP
    unpack = _HDR_EXPLICIT.unpack_from
    unpack_u32 = _U32.unpack_from
    short_vrs = _SHORT_VRS
    vr_kind = _VR_KIND.get
    classes = _TAG_CLASS
    append = listed.append
    undefined = UNDEFINED
    pad = _PAD
    while pos <= stop:
        group, elem, vr, length = unpack(buf, pos)
        if group == 0xFFFE:
            failure = _delimiter(buf, pos, size, elem, stack)
            if failure:
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
            tag = group << 16 | elem
            if vr in short_vrs:
                # 16-bit length, never a sequence, never undefined. An empty value is never
                # counted; an empty wanted value reads as absent in _result.
                pos += 8
                end = pos + length
                if end > size:
                    return _fail(MALFORMED, "length-past-end")
                if tag in classes:
                    cls = classes[tag]
                    if cls & 1 and (length > 2 or buf[pos:end].strip(pad)):
                        append(tag)
                    if cls & 2 and not depth:
                        if end > limit:
                            return _need_or(buf, size, end + 4096, final, "truncated")
                        value = buf[pos:end] if length <= _MAX_VALUE else buf[pos : pos + _MAX_VALUE]
                        values[tag] = value.strip(pad)
                elif group & 1:
                    if elem and length:
                        private += 1
                elif group >= 0x5000 and length and (group & 0xFF00) in (0x5000, 0x6000):
                    append(tag)
                    repeating = True
                pos = end
                if pos < top:
                    continue
            else:
                kind = vr_kind(vr)
                if kind is None:
                    return _fail(MALFORMED, "bad-vr")
                if pos + 12 > limit:
                    return _need_or(buf, size, pos + 4096, final, "truncated")
                length = unpack_u32(buf, pos + 8)[0]
                pos += 12
                is_seq = kind == _SEQ
                if length > _MAX_SMALL and length == undefined:
                    if not is_seq:
                        if vr == b"UN":
                            return _fail(UNSUPPORTED, "undefined-length-un")
                        return _fail(MALFORMED, "undefined-length-value")
                    end = undefined
                else:
                    end = pos + length
                    if end > size:
                        return _fail(MALFORMED, "length-past-end")
                if length:
                    if tag in classes:
                        cls = classes[tag]
                        if cls & 1 and (length > 2 or is_seq or buf[pos:end].strip(pad)):
                            append(tag)
                        if cls & 2 and not depth:
                            if is_seq:
                                values[tag] = b"Y"
                            elif end > limit:
                                return _need_or(buf, size, end + 4096, final, "truncated")
                            else:
                                values[tag] = buf[pos : pos + min(length, _MAX_VALUE)].strip(pad)
                    elif group & 1:
                        if elem:
                            private += 1
                    elif group >= 0x5000 and (group & 0xFF00) in (0x5000, 0x6000):
                        append(tag)
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
            top, is_item = stack[-1]
            guard = _NO_GROUP if is_item else 0
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
    values: dict[int, bytes],
    repeating: bool,
) -> Header:
    """:func:`_walk_explicit` for implicit VR little endian: a sequence is recognised by its
    undefined length or by its tag's dictionary VR (bit 4 of :data:`_TAG_CLASS_IMPLICIT`)."""
    limit = min(len(buf), size)
    stop = limit - 8
    stack: list[tuple[int, bool]] = []
    depth = 0
    no_end = limit + 1  # past every element header: the close step is a no-op there
    top = no_end
    guard = _PIXEL_GROUP
    unpack = _HDR_IMPLICIT.unpack_from
    tag_class = _TAG_CLASS_IMPLICIT.get
    append = listed.append
    undefined = UNDEFINED
    pad = _PAD
    while pos <= stop:
        group, elem, length = unpack(buf, pos)
        if group == 0xFFFE:
            failure = _delimiter(buf, pos, size, elem, stack)
            if failure:
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
            tag = group << 16 | elem
            pos += 8
            cls = tag_class(tag)
            if length > _MAX_SMALL and length == undefined:
                is_seq = True
                end = undefined
            else:
                is_seq = cls is not None and cls & _SQ_BIT != 0
                end = pos + length
                if end > size:
                    return _fail(MALFORMED, "length-past-end")
            if length:
                if cls is not None and cls & 3:
                    if cls & 1 and (length > 2 or is_seq or buf[pos:end].strip(pad)):
                        append(tag)
                    if cls & 2 and not depth:
                        if is_seq:
                            values[tag] = b"Y"
                        elif end > limit:
                            return _need_or(buf, size, end + 4096, final, "truncated")
                        else:
                            values[tag] = buf[pos : pos + min(length, _MAX_VALUE)].strip(pad)
                elif group & 1:
                    if elem:
                        private += 1
                elif group >= 0x5000 and (group & 0xFF00) in (0x5000, 0x6000):
                    append(tag)
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
            top, is_item = stack[-1]
            guard = _NO_GROUP if is_item else 0
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
    values: dict[int, bytes],
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
    return _fail(MALFORMED, "truncated")


def _delimiter(buf: bytes, pos: int, size: int, elem: int, stack: list[tuple[int, bool]]) -> str:
    """Handle an item or delimiter tag (PS3.5 §7.5). Returns a failure reason or ""."""
    length = _U32.unpack_from(buf, pos + 4)[0]
    if elem == 0xE000:
        if not stack or stack[-1][1]:
            return "item-outside-sequence"
        if length == UNDEFINED:
            stack.append((UNDEFINED, True))
        elif pos + 8 + length > size:
            return "length-past-end"
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


def _result(
    pos: int,
    listed: list[int],
    private: int,
    values: dict[int, bytes],
    *,
    partial: bool,
    repeating: bool = False,
) -> Header:
    hdr = Header(OK)
    hdr.header_end = pos
    hdr.partial = partial
    tags = tuple(dict.fromkeys(listed))  # nested items may repeat a tag: one line per attribute
    if repeating:
        # Repeating groups count only where Annex E lists them (50xx curves, 60xx overlay data).
        annex = _load_annex_e()
        tags = tuple(t for t in tags if annex.keyword(t) is not None)
    hdr.phi_tags = tags
    hdr.private_tags = private
    hdr.patient = values.get(_PATIENT_ID) or values.get(_PATIENT_NAME) or None
    hdr.study = values.get(_STUDY_UID) or None
    date = values.get(_STUDY_DATE)
    if date and len(date) >= 4 and date[:4].isdigit():
        year = int(date[:4])
        if 1850 <= year <= 2200:
            hdr.year = year
    hdr.modality = values.get(_MODALITY) or None
    if values.get(_BURNED_IN) is not None:
        hdr.burned_in = values[_BURNED_IN].upper() == b"YES"
    if values.get(_IDENTITY_REMOVED) is not None:
        hdr.identity_removed = values[_IDENTITY_REMOVED].upper() == b"YES"
    hdr.deid_method = bool(values.get(_DEID_METHOD) or values.get(_DEID_METHOD_CODES))
    sop = values.get(_MEDIA_SOP_CLASS) or values.get(_SOP_CLASS)
    hdr.dicomdir = sop == DICOMDIR_SOP_CLASS
    return hdr


__all__ = [
    "MALFORMED",
    "NEED_MORE",
    "NOT_DICOM",
    "OK",
    "UNSUPPORTED",
    "Header",
    "parse",
]
