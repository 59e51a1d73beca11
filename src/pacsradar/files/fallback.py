"""pydicom fallback for encodings the fast walker leaves alone (big endian, deflate, odd meta).

pydicom is lenient and thorough but slow; it runs on a bounded in-memory prefix only, with its
warnings and log records suppressed: pydicom's validation messages can quote element values, and a
value may be PHI (HACKING rule 1).
"""

from __future__ import annotations

from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset

from pacsradar.files import header as hdrmod
from pacsradar.files.annex_e import AnnexE
from pacsradar.files.annex_e import load as load_annex_e
from pacsradar.phi import quiet_values

_MAX_DEPTH = 16


def _raw(ds: Dataset, tag: int) -> bytes | None:
    if tag not in ds:
        return None
    value = ds[tag].value
    if value is None:
        return None
    text = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    return text.strip(b" \x00")[:256] or None


def parse_with_pydicom(buf: bytes, size: int) -> hdrmod.Header:
    """Parse ``buf`` with pydicom (stop before pixels) into the walker's :class:`Header`."""
    annex = load_annex_e()
    try:
        with quiet_values():
            ds = dcmread(BytesIO(buf), stop_before_pixels=True, force=True, defer_size=256)
            seen: dict[int, None] = {}
            private = _classify(ds, annex, seen, 0)
            meta = getattr(ds, "file_meta", None)
            if meta is not None:
                _classify(meta, annex, seen, 0)
            hdr = hdrmod.Header(hdrmod.OK)
            hdr.phi_tags = tuple(seen)
            hdr.private_tags = private
            hdr.patient = _raw(ds, 0x00100020) or _raw(ds, 0x00100010)
            hdr.study = _raw(ds, 0x0020000D)
            date = _raw(ds, 0x00080020)
            if date and date[:4].isdigit() and 1850 <= int(date[:4]) <= 2200:
                hdr.year = int(date[:4])
            hdr.modality = _raw(ds, 0x00080060)
            hdr.burned_in = (_raw(ds, 0x00280301) or b"").upper() == b"YES"
            hdr.identity_removed = (_raw(ds, 0x00120062) or b"").upper() == b"YES"
            hdr.deid_method = bool(_raw(ds, 0x00120063)) or 0x00120064 in ds
            sop = (_raw(meta, 0x00020002) if meta is not None else None) or _raw(ds, 0x00080016)
            hdr.dicomdir = sop == hdrmod.DICOMDIR_SOP_CLASS
    except Exception:  # hostile input: any pydicom failure means "malformed", never a crash
        return hdrmod.Header(hdrmod.MALFORMED, "unparseable")
    if len(buf) >= 132 and buf[128:132] == b"DICM":
        hdr.preamble = buf[:128]
    # The caller hands a bounded prefix; a shorter one than the file may have cut the header.
    hdr.partial = len(buf) < size
    return hdr


def _classify(ds: Dataset, annex: AnnexE, seen: dict[int, None], depth: int) -> int:
    private = 0
    for elem in ds:
        tag = int(elem.tag)
        if tag & 0xFFFF == 0:
            continue
        if elem.VR == "SQ" and elem.value and depth < _MAX_DEPTH:
            for item in elem.value:
                private += _classify(item, annex, seen, depth + 1)
        if elem.is_empty:
            continue
        if (tag >> 16) & 1:
            private += 1
        elif annex.keyword(tag) is not None:
            seen[tag] = None
    return private


__all__ = ["parse_with_pydicom"]
