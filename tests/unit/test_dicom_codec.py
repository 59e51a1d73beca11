"""Units for the DICOM Upper Layer and DIMSE codecs (no network: in-memory streams).

pacsradar encodes and decodes its few PDUs and command sets itself (``dicom/ul.py``,
``dicom/dimse.py``); pynetdicom and pydicom are the reference here: every encoding must decode
to the same fields with pynetdicom, and pynetdicom's encodings must decode the same with ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest

from pacsradar import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsradar.dicom import dimse, ul
from pacsradar.dicom.client import (
    AssociationKind,
    DicomClient,
    ProposedContext,
    UserIdentity,
    describe_rj,
    encode_associate_rq,
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
    raw = encode_associate_rq("CALLED", "CALLING", (ProposedContext("1.2.840.10008.1.1"),))
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


def _pynetdicom_rq(
    called: str, calling: str, contexts: tuple[ProposedContext, ...], identity: UserIdentity | None
) -> bytes:
    """The same A-ASSOCIATE-RQ built with pynetdicom's primitives and PDU classes."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import (
        A_ASSOCIATE,
        ImplementationClassUIDNotification,
        ImplementationVersionNameNotification,
        MaximumLengthNotification,
        UserIdentityNegotiation,
    )
    from pynetdicom.presentation import PresentationContext

    prim = A_ASSOCIATE()
    prim.application_context_name = "1.2.840.10008.3.1.1.1"
    prim.calling_ae_title = calling
    prim.called_ae_title = called
    pcs = []
    for i, ctx in enumerate(contexts):
        pc = PresentationContext()
        pc.context_id = 1 + 2 * i
        pc.abstract_syntax = ctx.abstract_syntax
        pc.transfer_syntax = list(ctx.transfer_syntaxes)
        pcs.append(pc)
    prim.presentation_context_definition_list = pcs
    ml = MaximumLengthNotification()
    ml.maximum_length_received = 65536
    uid = ImplementationClassUIDNotification()
    uid.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ver = ImplementationVersionNameNotification()
    ver.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    items: list[object] = [ml, uid, ver]
    if identity is not None:
        ui = UserIdentityNegotiation()
        ui.user_identity_type = 2
        ui.primary_field = identity.username
        ui.secondary_field = identity.passcode
        ui.positive_response_requested = identity.positive_response_requested
        items.append(ui)
    prim.user_information = items
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(prim)
    return bytes(rq.encode())


def test_associate_rq_is_byte_identical_to_pynetdicoms_encoding() -> None:
    # Given random AE titles, our probe contexts and a random bogus identity (or none)
    from pacsradar.dicom.context import bogus_identity, random_aet
    from pacsradar.dicom.sop import probe_contexts

    for n in range(6):
        called, calling = random_aet(), random_aet()
        identity = bogus_identity() if n % 2 else None
        # When we encode the RQ ourselves
        ours = encode_associate_rq(called, calling, probe_contexts(), identity)
        # Then it is byte-identical to pynetdicom's encoding of the same primitive
        assert ours == _pynetdicom_rq(called, calling, probe_contexts(), identity)


def _pynetdicom_ac(*, contexts: list[tuple[int, int, str]], identity_response: bool) -> bytes:
    from pynetdicom.pdu import A_ASSOCIATE_AC
    from pynetdicom.pdu_primitives import (
        A_ASSOCIATE,
        ImplementationClassUIDNotification,
        ImplementationVersionNameNotification,
        MaximumLengthNotification,
        UserIdentityNegotiation,
    )
    from pynetdicom.presentation import PresentationContext

    prim = A_ASSOCIATE()
    prim.application_context_name = "1.2.840.10008.3.1.1.1"
    prim.called_ae_title = "ANY-SCP"
    prim.calling_ae_title = "SCU"
    prim.result = 0
    results = []
    for cid, result, ts in contexts:
        pc = PresentationContext()
        pc.context_id = cid
        pc.result = result
        pc.transfer_syntax = [ts]
        results.append(pc)
    prim.presentation_context_definition_results_list = results
    ml = MaximumLengthNotification()
    ml.maximum_length_received = 16382
    uid = ImplementationClassUIDNotification()
    uid.implementation_class_uid = "1.2.276.0.7230010.3.0.3.6.7"
    ver = ImplementationVersionNameNotification()
    ver.implementation_version_name = "OFFIS_DCMTK_367"
    items: list[object] = [ml, uid, ver]
    if identity_response:
        ui = UserIdentityNegotiation()
        ui.server_response = b"ok"
        items.append(ui)
    prim.user_information = items
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(prim)
    return bytes(ac.encode())


@pytest.mark.parametrize("identity_response", [False, True])
async def test_pynetdicom_ac_decodes_to_the_same_facts(identity_response: bool) -> None:
    # Given an A-ASSOCIATE-AC encoded by pynetdicom: context 1 accepted (explicit VR), 3 refused
    # with "abstract syntax not supported", and DCMTK's implementation identity
    raw = _pynetdicom_ac(
        contexts=[(1, 0, "1.2.840.10008.1.2.1"), (3, 3, "1.2.840.10008.1.2")],
        identity_response=identity_response,
    )
    client = DicomClient(stream_with(raw), max_pdu_bytes=1 << 20)
    # When we associate against it
    result = await client.associate(
        "ANY-SCP",
        "SCU",
        (ProposedContext("1.2.840.10008.1.1"), ProposedContext("1.2.840.10008.5.1.4.1.2.2.1")),
    )
    # Then every fact matches what pynetdicom put in
    assert result.kind is AssociationKind.ACCEPTED
    assert result.accepted == {"1.2.840.10008.1.1": (1, "1.2.840.10008.1.2.1")}
    assert result.refused == {"1.2.840.10008.5.1.4.1.2.2.1": 3}
    assert result.max_pdu == 16382
    assert result.implementation_class_uid == "1.2.276.0.7230010.3.0.3.6.7"
    assert result.implementation_version_name == "OFFIS_DCMTK_367"
    assert result.user_identity_response is identity_response


def _pynetdicom_message(kind: str, **fields: object) -> bytes:
    """A DIMSE message encoded by pynetdicom as P-DATA-TF PDUs."""
    from io import BytesIO

    from pynetdicom import dimse_messages, dimse_primitives
    from pynetdicom.pdu import P_DATA_TF

    prim = getattr(dimse_primitives, kind)()
    for name, value in fields.items():
        setattr(prim, name, BytesIO(value) if name == "Identifier" else value)
    msg_type = kind + ("_RQ" if fields.get("MessageID") or kind == "C_CANCEL" else "_RSP")
    msg = getattr(dimse_messages, msg_type)()
    msg.primitive_to_message(prim)
    out = b""
    for pdata in msg.encode_msg(1, 16384):
        pdu = P_DATA_TF()
        pdu.from_primitive(pdata)
        out += bytes(pdu.encode())
    return out


def _command_of(raw: bytes) -> object:
    from io import BytesIO

    from pydicom.filereader import read_dataset

    pdvs = [frag for pdu in _split_pdus(raw) for _cid, hdr, frag in ul.iter_pdvs(pdu) if hdr & 1]
    return read_dataset(BytesIO(b"".join(pdvs)), True, True)


def _split_pdus(raw: bytes) -> list[ul.RawPdu]:
    out, pos = [], 0
    while pos < len(raw):
        pdu_type, _r, length = struct.unpack_from(">BBL", raw, pos)
        out.append(ul.RawPdu(pdu_type, raw[pos + 6 : pos + 6 + length]))
        pos += 6 + length
    return out


@pytest.mark.parametrize(
    ("ours", "kind", "fields"),
    [
        (lambda: dimse.echo_rq(7), "C_ECHO", {"MessageID": 7, "AffectedSOPClassUID": "1.2.840.10008.1.1"}),
        (
            lambda: dimse.find_rq(9, "1.2.840.10008.5.1.4.1.2.2.1"),
            "C_FIND",
            {"MessageID": 9, "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.1", "Priority": 2},
        ),
        (lambda: dimse.cancel_rq(9), "C_CANCEL", {"MessageIDBeingRespondedTo": 9}),
        (
            lambda: dimse.move_rq(3, "1.2.840.10008.5.1.4.1.2.2.2", "DST123"),
            "C_MOVE",
            {
                "MessageID": 3,
                "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.2",
                "Priority": 2,
                "MoveDestination": "DST123",
            },
        ),
    ],
)
def test_our_command_sets_match_pynetdicoms(ours: object, kind: str, fields: dict[str, object]) -> None:
    # Given pynetdicom's encoding of the same request (with an identifier where one belongs)
    with_data = kind in ("C_FIND", "C_MOVE")
    identifier = {"Identifier": b"\x08\x00\x52\x00\x00\x00\x00\x00"} if with_data else {}
    theirs = _command_of(_pynetdicom_message(kind, **fields, **identifier))
    # When we encode it ourselves
    mine = _command_of(ul.encode_pdata(1, ours(), b"\x00" * 8 if with_data else None, 16384))  # type: ignore[operator]
    # Then every command element has the same value
    assert {e.keyword: e.value for e in mine} == {e.keyword: e.value for e in theirs}  # type: ignore[attr-defined]


def test_pynetdicom_find_response_decodes_to_the_same_fields() -> None:
    # Given a pending C-FIND-RSP encoded by pynetdicom, with an identifier
    raw = _pynetdicom_message(
        "C_FIND",
        MessageIDBeingRespondedTo=5,
        AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.1",
        Status=0xFF00,
        Identifier=b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ",
    )
    pdvs = [(hdr, frag) for pdu in _split_pdus(raw) for _c, hdr, frag in ul.iter_pdvs(pdu)]
    command = dimse.decode_command(b"".join(f for h, f in pdvs if h & 1))
    # Then our decoder reads the same status, message id and data set flag
    assert command.status == 0xFF00
    assert command.message_id_responded == 5
    assert command.command_field == 0x8020
    assert command.has_data_set


def test_identifier_dictionary_matches_pydicom() -> None:
    # Given pydicom's data dictionary (PS3.6)
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    # Then every tag and VR we encode with is the standard one
    for keyword, (tag, vr) in dimse.DICTIONARY.items():
        assert tag_for_keyword(keyword) == tag, keyword
        assert dictionary_VR(tag) == vr.decode(), keyword


@pytest.mark.parametrize("implicit", [True, False])
def test_identifiers_are_encoded_like_pydicom(implicit: bool) -> None:
    # Given our study-level query identifier
    from pydicom.dataset import Dataset
    from pynetdicom.dsutils import encode

    from pacsradar.dicom.checks.query import study_identifier

    keys = study_identifier()
    ds = Dataset()
    for keyword, value in keys:
        setattr(ds, keyword, value or None if keyword.startswith("Number") else value)
    # When we encode it, Then the bytes are pydicom's
    assert dimse.encode_identifier(keys, implicit) == encode(ds, implicit, True)


@pytest.mark.parametrize("implicit", [True, False])
def test_response_walker_reads_top_level_values_and_skips_sequences(implicit: bool) -> None:
    # Given a response identifier with an undefined-length sequence holding look-alike elements
    from pydicom.dataset import Dataset
    from pynetdicom.dsutils import encode

    inner = Dataset()
    inner.PatientID = "NESTED"
    ds = Dataset()
    ds.PatientID = "TOP-LEVEL"
    ds.OtherPatientIDsSequence = [inner, inner]
    ds.StudyDate = "20240101"
    raw = encode(ds, implicit, True)
    assert raw is not None
    wanted = frozenset({0x00100020, 0x00080020})
    # When we read the wanted top-level values
    values = dimse.top_level_values(bytes(raw), implicit, wanted)
    # Then nested elements are not mistaken for top-level ones
    assert values == {0x00100020: b"TOP-LEVEL", 0x00080020: b"20240101"}


@pytest.mark.parametrize(
    "raw",
    [
        b"\x10\x00\x20\x00\xff\x00\x00\x00abc",  # length past the end
        b"\x10\x00\x20\x00",  # truncated header
        b"\x10\x00\x20\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" * 40,  # deep nesting
        b"\x10\x00\x20\x00\xff\xff\xff\xff\x10\x00\x20\x00\x00\x00\x00\x00",  # not an item
    ],
)
def test_malformed_identifiers_are_protocol_errors(raw: bytes) -> None:
    # Given a hostile identifier, Then reading it is a ProtocolError (never another exception)
    with pytest.raises(ProtocolError):
        dimse.top_level_values(raw, True, frozenset({0x00100020}))


def test_decoders_never_raise_anything_but_protocol_errors() -> None:
    # Given many random mutations of a valid AC, command set and identifier
    import random

    rng = random.Random(1234)
    ac = _pynetdicom_ac(contexts=[(1, 0, "1.2.840.10008.1.2")], identity_response=True)[6:]
    cmd = dimse.find_rq(1, "1.2.840.10008.5.1.4.1.2.2.1")
    ident = dimse.encode_identifier((("PatientID", "X"), ("StudyDate", "2020")), False)
    for _ in range(3000):
        for seed, decode in (
            (ac, lambda b: ul.decode_ac(ul.RawPdu(2, b))),
            (cmd, dimse.decode_command),
            (ident, lambda b: dimse.top_level_values(b, False, frozenset({0x00100020}))),
        ):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = data[: rng.randint(0, len(data))]
            # When we decode it, Then it decodes or raises ProtocolError, nothing else
            with contextlib.suppress(ProtocolError):
                decode(bytes(data))
