"""DICOM Upper Layer PDUs (PS3.8 §9.3): framing, and the few PDUs an audit sends or reads.

Why our own codec and not pynetdicom's PDU classes: an audit sends one fixed A-ASSOCIATE-RQ and
reads a handful of small control PDUs per target, and pynetdicom's classes cost a third of a
second of start-up (they import pydicom, numpy and requests) and a quarter of the CPU per target
in a 1,000-host sweep (``bench/README.md``). The layouts below are PS3.8's tables, every length
is checked against what is actually there before it is used, and the test suite checks both
directions against pynetdicom's encoder and decoder (``tests/unit/test_dicom_codec.py``).

A peer's PDU length is capped *before* any allocation, so a peer that announces a 4 GB PDU costs
us six bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pacsradar.errors import NotDicomError, ProtocolError, SizeLimitError
from pacsradar.net import ByteStream

# PS3.8 §9.3.1: PDU header is type (1), reserved (1), length (4, big endian).
_HEADER = struct.Struct(">BBL")
PDU_ASSOCIATE_RQ = 0x01
PDU_ASSOCIATE_AC = 0x02
PDU_ASSOCIATE_RJ = 0x03
PDU_P_DATA_TF = 0x04
PDU_RELEASE_RQ = 0x05
PDU_RELEASE_RP = 0x06
PDU_ABORT = 0x07
_KNOWN = frozenset(range(PDU_ASSOCIATE_RQ, PDU_ABORT + 1))
# An A-ASSOCIATE-AC/RJ/ABORT/RELEASE is small; only P-DATA may be large.
_MAX_CONTROL_PDU = 64 * 1024

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1 DICOM Application Context Name

# PS3.8 §9.3.2 / §9.3.3 item types
_ITEM_APP_CONTEXT = 0x10
_ITEM_PC_RQ = 0x20
_ITEM_PC_AC = 0x21
_ITEM_ABSTRACT = 0x30
_ITEM_TRANSFER = 0x40
_ITEM_USER_INFO = 0x50
# PS3.8 D.1 and PS3.7 D.3.3 user information sub-items
_SUB_MAX_LENGTH = 0x51
_SUB_IMPL_UID = 0x52
_SUB_IMPL_VERSION = 0x55
_SUB_USER_IDENTITY_RQ = 0x58
_SUB_USER_IDENTITY_AC = 0x59

_ITEM = struct.Struct(">BBH")  # item type, reserved, item length (PS3.8 Table 9-12)
_U32 = struct.Struct(">L")
_U16 = struct.Struct(">H")
# PS3.8 Table 9-11: protocol version (2), reserved (2), called AE (16), calling AE (16),
# reserved (32): 68 bytes before the variable items, identical in the AC (Table 9-17).
_FIXED = struct.Struct(">HH16s16s32s")


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


async def read_pdu(stream: ByteStream, max_pdu_bytes: int, *, header_timeout: float | None = None) -> RawPdu:
    """Read one PDU, refusing unknown types and over-long lengths before reading the body.

    ``header_timeout`` bounds the wait for the first six bytes (default: the read timeout).
    """
    header = await stream.read_exactly(_HEADER.size, header_timeout)
    pdu_type, _reserved, length = _HEADER.unpack(header)
    if pdu_type not in _KNOWN:
        kind = classify_banner(header)
        raise NotDicomError(f"peer answered with a non-DICOM byte stream ({kind})", kind)
    bound = max_pdu_bytes if pdu_type == PDU_P_DATA_TF else _MAX_CONTROL_PDU
    if length > bound:
        raise SizeLimitError(f"peer announced a {length}-byte PDU; our bound is {bound} bytes")
    body = await stream.read_exactly(length)
    return RawPdu(pdu_type, body)


# -- A-ASSOCIATE-RQ (PS3.8 §9.3.2) ---------------------------------------------------------


@dataclass(frozen=True)
class UserIdentityRq:
    """PS3.7 D.3.3.7.1: type 2 is username + passcode."""

    username: bytes
    passcode: bytes
    positive_response_requested: bool = True
    identity_type: int = 2


def _item(item_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError("PDU item longer than 65535 bytes")
    return _ITEM.pack(item_type, 0, len(value)) + value


def aet_field(aet: str) -> bytes:
    # PS3.5 Table 6.2-1: AE titles are at most 16 characters of the default repertoire, padded
    # with spaces in the fixed 16-byte fields of PS3.8 Table 9-11.
    return aet.encode("ascii", "replace")[:16].ljust(16, b" ")


def encode_associate_rq(
    called_aet: str,
    calling_aet: str,
    contexts: Sequence[tuple[str, Sequence[str]]],
    *,
    max_pdu: int,
    implementation_class_uid: str,
    implementation_version_name: str,
    user_identity: UserIdentityRq | None = None,
) -> bytes:
    """Our A-ASSOCIATE-RQ: contexts get the odd ids 1, 3, 5, ... in order (PS3.8 §9.3.2.2)."""
    if len(contexts) > 128:
        raise ValueError("at most 128 presentation contexts per association (PS3.8 §9.3.2.2)")
    items = [_item(_ITEM_APP_CONTEXT, APPLICATION_CONTEXT.encode("ascii"))]
    for i, (abstract, transfers) in enumerate(contexts):
        # Table 9-13: context id, 3 reserved bytes, one abstract syntax, transfer syntaxes.
        body = bytes([1 + 2 * i, 0, 0, 0]) + _item(_ITEM_ABSTRACT, abstract.encode("ascii"))
        body += b"".join(_item(_ITEM_TRANSFER, ts.encode("ascii")) for ts in transfers)
        items.append(_item(_ITEM_PC_RQ, body))
    user = [
        _item(_SUB_MAX_LENGTH, _U32.pack(max_pdu)),
        _item(_SUB_IMPL_UID, implementation_class_uid.encode("ascii")),
        _item(_SUB_IMPL_VERSION, implementation_version_name.encode("ascii")),
    ]
    if user_identity is not None:
        # PS3.7 Table D.3-14: type, positive-response-requested, then two length-prefixed fields.
        ui = user_identity
        user.append(
            _item(
                _SUB_USER_IDENTITY_RQ,
                bytes([ui.identity_type, int(ui.positive_response_requested)])
                + _U16.pack(len(ui.username))
                + ui.username
                + _U16.pack(len(ui.passcode))
                + ui.passcode,
            )
        )
    items.append(_item(_ITEM_USER_INFO, b"".join(user)))
    body = _FIXED.pack(1, 0, aet_field(called_aet), aet_field(calling_aet), b"") + b"".join(items)
    return _HEADER.pack(PDU_ASSOCIATE_RQ, 0, len(body)) + body


# -- A-ASSOCIATE-AC (PS3.8 §9.3.3), -RJ (§9.3.4), A-ABORT (§9.3.8) --------------------------


@dataclass(frozen=True)
class ContextResult:
    """PS3.8 Table 9-18: result 0 acceptance, 1 user-rejection, 2 no-reason, 3 abstract syntax
    not supported, 4 transfer syntaxes not supported."""

    context_id: int
    result: int
    transfer_syntax: str | None


@dataclass(frozen=True)
class AssociateAc:
    contexts: tuple[ContextResult, ...] = ()
    max_pdu: int | None = None
    implementation_class_uid: bytes | None = None
    implementation_version_name: bytes | None = None
    user_identity_response: bool = False
    other_user_items: tuple[int, ...] = field(default=())
    #: every user information sub-item type, in the order the peer sent them
    user_items: tuple[int, ...] = field(default=())


def _items(data: bytes, start: int, end: int, what: str) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of each item in ``data[start:end]``, every length checked."""
    pos = start
    while pos < end:
        if end - pos < _ITEM.size:
            raise ProtocolError(f"truncated item header in {what}")
        item_type, _reserved, length = _ITEM.unpack_from(data, pos)
        value = pos + _ITEM.size
        if value + length > end:
            raise ProtocolError(f"item 0x{item_type:02x} runs past the end of {what}")
        yield item_type, value, value + length
        pos = value + length


def _uid(raw: bytes) -> str:
    # PS3.8 Annex F: UIDs are ASCII; some peers pad with a trailing NUL, which is not part of it.
    return raw.rstrip(b"\x00 ").decode("ascii", "replace")


def decode_ac(pdu: RawPdu) -> AssociateAc:
    body = pdu.body
    if len(body) < _FIXED.size:
        raise ProtocolError("malformed A-ASSOCIATE-AC from peer (shorter than its fixed fields)")
    contexts: list[ContextResult] = []
    max_pdu = impl_uid = impl_ver = None
    identity = False
    others: list[int] = []
    user_items: list[int] = []
    seen_user_info = False
    for item_type, start, end in _items(body, _FIXED.size, len(body), "A-ASSOCIATE-AC"):
        if item_type == _ITEM_PC_AC:
            # Table 9-18: context id, reserved, result/reason, reserved, transfer syntax sub-item.
            if end - start < 4:
                raise ProtocolError("malformed presentation context item in A-ASSOCIATE-AC")
            cid, result = body[start], body[start + 2]
            ts = None
            for sub_type, s, e in _items(body, start + 4, end, "a presentation context item"):
                if sub_type == _ITEM_TRANSFER:
                    ts = _uid(body[s:e])
            # §9.3.3.2: the transfer syntax is not significant unless the result is acceptance.
            contexts.append(ContextResult(cid, result, ts if result == 0 else None))
        elif item_type == _ITEM_USER_INFO:
            seen_user_info = True
            for sub_type, s, e in _items(body, start, end, "the user information item"):
                if len(user_items) < 32:
                    user_items.append(sub_type)
                if sub_type == _SUB_MAX_LENGTH:
                    if e - s != 4:
                        raise ProtocolError("malformed Maximum Length sub-item in A-ASSOCIATE-AC")
                    max_pdu = _U32.unpack_from(body, s)[0]
                elif sub_type == _SUB_IMPL_UID:
                    impl_uid = body[s:e]
                elif sub_type == _SUB_IMPL_VERSION:
                    impl_ver = body[s:e]
                elif sub_type == _SUB_USER_IDENTITY_AC:
                    identity = True
                else:
                    others.append(sub_type)
        elif item_type != _ITEM_APP_CONTEXT:
            others.append(item_type)
    if not seen_user_info:
        # PS3.8 §9.3.3.2: the user information item is mandatory (it carries the max length).
        raise ProtocolError("malformed A-ASSOCIATE-AC from peer (no user information item)")
    return AssociateAc(
        tuple(contexts), max_pdu, impl_uid, impl_ver, identity, tuple(others), tuple(user_items)
    )


def decode_rj(pdu: RawPdu) -> tuple[int, int, int]:
    """(result, source, reason) of an A-ASSOCIATE-RJ (PS3.8 Table 9-21)."""
    if len(pdu.body) != 4:
        raise ProtocolError("malformed A-ASSOCIATE-RJ from peer (length is not 4)")
    return pdu.body[1], pdu.body[2], pdu.body[3]


def decode_abort(pdu: RawPdu) -> tuple[int, int]:
    """(source, reason) of an A-ABORT (PS3.8 Table 9-26)."""
    if len(pdu.body) != 4:
        raise ProtocolError("malformed A-ABORT from peer (length is not 4)")
    return pdu.body[2], pdu.body[3]


# -- P-DATA-TF (PS3.8 §9.3.5 and Annex E) ----------------------------------------------------

_PDV = struct.Struct(">LBB")  # item length, presentation context id, message control header


def iter_pdvs(pdu: RawPdu) -> Iterator[tuple[int, int, bytes]]:
    """(context id, message control header, fragment) of each PDV item, lengths checked."""
    body = pdu.body
    pos, end = 0, len(body)
    if end == 0:
        raise ProtocolError("P-DATA-TF without presentation data values")
    while pos < end:
        if end - pos < _PDV.size:
            raise ProtocolError("truncated PDV item in P-DATA-TF")
        length, cid, header = _PDV.unpack_from(body, pos)
        if length < 2 or pos + 4 + length > end:
            raise ProtocolError("PDV item length is invalid for its P-DATA-TF")
        yield cid, header, body[pos + 6 : pos + 4 + length]
        pos += 4 + length


def encode_pdata(context_id: int, command: bytes, dataset: bytes | None, max_pdu: int) -> bytes:
    """One DIMSE message as P-DATA-TF PDUs of one PDV each, fragments bounded by the peer's
    Maximum Length (PS3.8 D.1: it bounds the PDU's variable field, PDV headers included)."""
    size = max(max_pdu - 6, 1)
    out = bytearray()
    for payload, kind in ((command, 0x01), (dataset, 0x00)):
        if payload is None:
            continue
        for offset in range(0, max(len(payload), 1), size):
            fragment = payload[offset : offset + size]
            last = 0x02 if offset + size >= len(payload) else 0x00
            out += _HEADER.pack(PDU_P_DATA_TF, 0, len(fragment) + 6)
            out += _PDV.pack(len(fragment) + 2, context_id, kind | last) + fragment
    return bytes(out)


# -- A-RELEASE (PS3.8 §9.3.6, §9.3.7) and A-ABORT ------------------------------------------


def encode_release_rq() -> bytes:
    return _HEADER.pack(PDU_RELEASE_RQ, 0, 4) + b"\x00" * 4


def encode_release_rp() -> bytes:
    return _HEADER.pack(PDU_RELEASE_RP, 0, 4) + b"\x00" * 4


def encode_abort() -> bytes:
    # PS3.8 §9.3.8: source 0 (service-user), reason 0.
    return _HEADER.pack(PDU_ABORT, 0, 4) + b"\x00" * 4
