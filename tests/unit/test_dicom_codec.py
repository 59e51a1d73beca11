"""Units for the DICOM Upper Layer framing and association codec (no network: in-memory streams)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from pacsradar import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsradar.dicom import ul
from pacsradar.dicom.client import (
    AssociationKind,
    DicomClient,
    ProposedContext,
    build_associate_rq,
    describe_rj,
)
from pacsradar.errors import NotDicomError, PeerClosed, ProtocolError, SizeLimitError
from pacsradar.net import Stream


class _Writer:
    """Just enough of a StreamWriter for the client to write into."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


def stream_with(data: bytes, *, eof: bool = True) -> Stream:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return Stream(reader, _Writer(), read_timeout=0.5)  # type: ignore[arg-type]


async def test_oversized_pdu_is_refused_before_reading_its_body() -> None:
    # Given a peer announcing a 4 GB A-ASSOCIATE-AC
    stream = stream_with(struct.pack(">BBL", 0x02, 0, 0xFFFFFFF0), eof=False)
    # When we read one PDU with a 1 MiB bound
    # Then it fails on the header alone with a size error, without waiting for the body
    with pytest.raises(SizeLimitError, match="4294967280-byte PDU"):
        await ul.read_pdu(stream, 1 << 20)


async def test_http_banner_is_not_dicom() -> None:
    # Given an HTTP server answering our A-ASSOCIATE-RQ
    stream = stream_with(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    # When we read a PDU, Then it is classified as HTTP (and the bytes are not echoed)
    with pytest.raises(NotDicomError) as info:
        await ul.read_pdu(stream, 1 << 20)
    assert info.value.kind == "http"
    assert "Bad Request" not in str(info.value)


async def test_tls_alert_is_recognised_as_tls() -> None:
    # Given a TLS server answering our plaintext with an alert record
    stream = stream_with(b"\x15\x03\x03\x00\x02\x02\x28")
    # Then the kind is 'tls', which lets the service check retry with a handshake
    with pytest.raises(NotDicomError) as info:
        await ul.read_pdu(stream, 1 << 20)
    assert info.value.kind == "tls"


async def test_truncated_pdu_is_a_clean_peer_closed_error() -> None:
    # Given a peer that announces 100 bytes and closes after 3
    stream = stream_with(struct.pack(">BBL", 0x02, 0, 100) + b"abc")
    # Then we get PeerClosed, not a hang or an IncompleteReadError
    with pytest.raises(PeerClosed):
        await ul.read_pdu(stream, 1 << 20)


def test_associate_rq_carries_our_own_implementation_identity() -> None:
    # Given our A-ASSOCIATE-RQ
    raw = ul.encode_rq(build_associate_rq("CALLED", "CALLING", [ProposedContext("1.2.840.10008.1.1")]))
    # Then it names pacsradar honestly (PS3.7 D.3.3.2), not pynetdicom or DCMTK
    assert IMPLEMENTATION_CLASS_UID.encode() in raw
    assert IMPLEMENTATION_VERSION_NAME.encode() in raw
    assert raw[0] == ul.PDU_ASSOCIATE_RQ


async def test_rejection_fields_are_recorded_exactly() -> None:
    # Given an A-ASSOCIATE-RJ: rejected-permanent, service-user, called-AE-title-not-recognized
    rj = struct.pack(">BBL", 0x03, 0, 4) + bytes([0, 1, 1, 7])
    client = DicomClient(stream_with(rj), max_pdu_bytes=1 << 20)
    # When we associate
    result = await client.associate("X", "Y", [ProposedContext("1.2.840.10008.1.1")])
    # Then result/source/reason are kept and described in PS3.8 Table 9-21 terms
    assert result.kind is AssociationKind.REJECTED
    assert (result.rj_result, result.rj_source, result.rj_reason) == (1, 1, 7)
    assert "called-AE-title-not-recognized" in describe_rj(result)
    assert not result.transient


async def test_malformed_ac_is_a_protocol_error() -> None:
    # Given an AC whose item lengths point past the end of the PDU
    body = b"\x00\x01\x00\x00" + b"A" * 32 + b"B" * 32 + b"\x00" * 32 + b"\x10\x00\xff\xff"
    client = DicomClient(stream_with(struct.pack(">BBL", 0x02, 0, len(body)) + body), max_pdu_bytes=1 << 20)
    # Then associate raises a ProtocolError (a clear error attempt), never another exception type
    with pytest.raises(ProtocolError):
        await client.associate("X", "Y", [ProposedContext("1.2.840.10008.1.1")])


def test_cached_rq_template_matches_a_fresh_pynetdicom_encoding() -> None:
    # Given random AE titles and a random bogus identity
    from pacsradar.dicom.client import encode_associate_rq
    from pacsradar.dicom.context import bogus_identity, random_aet
    from pacsradar.dicom.sop import probe_contexts

    for _ in range(5):
        called, calling, identity = random_aet(), random_aet(), bogus_identity()
        # When the RQ is built from the cached template
        fast = encode_associate_rq(called, calling, probe_contexts(), identity)
        # Then it is byte-identical to pynetdicom's own encoding
        slow = ul.encode_rq(build_associate_rq(called, calling, probe_contexts(), user_identity=identity))
        assert fast == slow
