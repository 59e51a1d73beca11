"""DICOM Upper Layer PDUs over asyncio streams, with every read bounded.

pynetdicom's PDU classes do the encoding and decoding (PS3.8 §9.3); this module only frames
PDUs on the wire and caps their size *before* any allocation, so a peer that announces a 4 GB
PDU costs us six bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeVar

from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
)

from pacsradar.errors import NotDicomError, ProtocolError, SizeLimitError
from pacsradar.net import Stream

# PS3.8 §9.3.1: PDU header is type (1), reserved (1), length (4, big endian).
_HEADER = struct.Struct(">BBL")
PDU_ASSOCIATE_RQ = 0x01
PDU_ASSOCIATE_AC = 0x02
PDU_ASSOCIATE_RJ = 0x03
PDU_P_DATA_TF = 0x04
PDU_RELEASE_RQ = 0x05
PDU_RELEASE_RP = 0x06
PDU_ABORT = 0x07
_KNOWN = {
    PDU_ASSOCIATE_RQ,
    PDU_ASSOCIATE_AC,
    PDU_ASSOCIATE_RJ,
    PDU_P_DATA_TF,
    PDU_RELEASE_RQ,
    PDU_RELEASE_RP,
    PDU_ABORT,
}
# An A-ASSOCIATE-AC/RJ/ABORT/RELEASE is small; only P-DATA may be large.
_MAX_CONTROL_PDU = 64 * 1024


@dataclass(frozen=True)
class RawPdu:
    pdu_type: int
    body: bytes

    @property
    def raw(self) -> bytes:
        return _HEADER.pack(self.pdu_type, 0, len(self.body)) + self.body


def looks_like_tls(data: bytes) -> bool:
    """A TLS record (alert 0x15 or handshake 0x16, version 3.x) answering our plaintext."""
    return len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 0x03


def classify_banner(head: bytes) -> str:
    """Name what a non-DICOM peer answered with, for the 'not DICOM' attempt (never echo it)."""
    if head.startswith(b"HTTP/") or head[:5].lower() in (b"<!doc", b"<html"):
        return "http"  # a status line, or an HTTP/0.9-style error page (Python's http.server)
    if looks_like_tls(head):
        return "tls"
    if head[:3] in (b"SSH", b"220", b"+OK", b"* O"):
        return "text-banner"
    return "unknown"


async def read_pdu(stream: Stream, max_pdu_bytes: int) -> RawPdu:
    """Read one PDU, refusing unknown types and over-long lengths before reading the body."""
    header = await stream.read_exactly(_HEADER.size)
    pdu_type, _reserved, length = _HEADER.unpack(header)
    if pdu_type not in _KNOWN:
        kind = classify_banner(header)
        raise NotDicomError(f"peer answered with a non-DICOM byte stream ({kind})", kind)
    bound = max_pdu_bytes if pdu_type == PDU_P_DATA_TF else _MAX_CONTROL_PDU
    if length > bound:
        raise SizeLimitError(f"peer announced a {length}-byte PDU; our bound is {bound} bytes")
    body = await stream.read_exactly(length)
    return RawPdu(pdu_type, body)


def decode_ac(pdu: RawPdu) -> A_ASSOCIATE_AC:
    return _decode(A_ASSOCIATE_AC(), pdu, "A-ASSOCIATE-AC")


def decode_rj(pdu: RawPdu) -> A_ASSOCIATE_RJ:
    return _decode(A_ASSOCIATE_RJ(), pdu, "A-ASSOCIATE-RJ")


def decode_abort(pdu: RawPdu) -> A_ABORT_RQ:
    return _decode(A_ABORT_RQ(), pdu, "A-ABORT")


def decode_pdata(pdu: RawPdu) -> P_DATA_TF:
    return _decode(P_DATA_TF(), pdu, "P-DATA-TF")


_P = TypeVar("_P", A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ABORT_RQ, P_DATA_TF)


def _decode(target: _P, pdu: RawPdu, name: str) -> _P:
    try:
        target.decode(pdu.raw)
    except Exception as exc:  # pynetdicom raises many types on malformed input
        raise ProtocolError(f"malformed {name} from peer ({type(exc).__name__})") from exc
    return target


def encode_release_rq() -> bytes:
    return bytes(A_RELEASE_RQ().encode())


def encode_release_rp() -> bytes:
    return bytes(A_RELEASE_RP().encode())


def encode_abort() -> bytes:
    # PS3.8 §9.3.8: source 0 (service-user), reason 0.
    return b"\x07\x00" + struct.pack(">L", 4) + b"\x00\x00\x00\x00"


def encode_rq(rq: A_ASSOCIATE_RQ) -> bytes:
    return bytes(rq.encode())
