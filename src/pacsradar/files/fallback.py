"""pydicom fallback for encodings the fast walker leaves alone (big endian, deflate, odd meta).

pydicom is lenient and thorough but slow; it runs on a bounded in-memory prefix only, with its
warnings and log records suppressed: pydicom's validation messages can quote element values, and a
value may be PHI (HACKING rule 1).
"""

from __future__ import annotations

from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag

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


def _before_pixels(tag: BaseTag, vr: str | None, length: int) -> bool:
    return int(tag) >= 0x7FE00008  # Float Pixel Data onwards: the header has ended (PS3.5 §7.1)


def parse_with_pydicom(buf: bytes, size: int) -> hdrmod.Header:
    """Parse ``buf`` with pydicom (stop before pixels) into the walker's :class:`Header`.

    A data set without Part 10 header is read where and as the walker's content guess says
    (:func:`pacsradar.files.header.guess_dataset`: offset, VR encoding, byte order), since
    pydicom would otherwise assume implicit VR little endian from byte 0.
    """
    annex = load_annex_e()
    part10 = len(buf) >= 132 and buf[128:132] == b"DICM"
    guess = -1 if part10 else hdrmod.guess_dataset(buf, size)
    try:
        with quiet_values():
            if guess >= 0:
                encoding = guess & 3  # 0 implicit LE, 1 explicit LE, 2 explicit BE, 3 implicit BE
                ds = read_dataset(
                    BytesIO(buf[guess >> 2 :]),
                    encoding in (0, 3),
                    encoding < 2,
                    stop_when=_before_pixels,
                    defer_size=256,
                )
            else:
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
    if part10:
        hdr.preamble = buf[:128]
    elif guess >= 0:
        hdr.raw = not (buf[guess >> 2] == 0x02 and buf[(guess >> 2) + 1] == 0x00)
        recognition = _raw(ds, 0x00080010) or b""
        hdr.acr_nema = recognition.startswith(b"ACR-NEMA")
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
