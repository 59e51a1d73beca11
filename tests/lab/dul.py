"""Minimal DICOM Upper Layer pieces (PS3.8 §9) for the hostile lab servers.

Built on pynetdicom's PDU and DIMSE codecs so that whatever the hostile servers send is
well-formed unless it is broken on purpose.
"""

from __future__ import annotations

import asyncio
import struct
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.uid import UID, ImplicitVRLittleEndian
from pynetdicom.dimse_messages import C_ECHO_RSP, C_FIND_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_FIND
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext

# PDU types, PS3.8 §9.3.1 Table 9-11.
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = 0x04, 0x05, 0x06, 0x07
# DIMSE Command Field values, PS3.7 Annex E.
C_FIND_RQ_CMD, C_ECHO_RQ_CMD, C_CANCEL_RQ_CMD = 0x0020, 0x0030, 0x0FFF

MAX_PDU = 16384
_HEADER = struct.Struct(">BxI")  # PDU type, reserved, PDU length (PS3.8 §9.3.1)
LAB_IMPLEMENTATION_UID = "2.25.197522492040998095040330258051705028555"


class PduTooLarge(Exception):
    """The peer announced a PDU larger than the lab servers are willing to read."""


async def read_pdu(reader: asyncio.StreamReader, limit: int = 1 << 20) -> tuple[int, bytes]:
    """Read one whole PDU; return (type, the PDU bytes including its 6-byte header)."""
    header = await reader.readexactly(_HEADER.size)
    pdu_type, length = _HEADER.unpack(header)
    if length > limit:
        raise PduTooLarge(length)
    return pdu_type, header + await reader.readexactly(length)


def associate_ac(rq_pdu: bytes) -> tuple[bytes, dict[int, UID]]:
    """An A-ASSOCIATE-AC (PS3.8 §9.3.3) accepting every proposed context with its first
    transfer syntax; returns the PDU bytes and {context id: transfer syntax}."""
    rq = A_ASSOCIATE_RQ()
    rq.decode(rq_pdu)
    req = rq.to_primitive()
    ac = A_ASSOCIATE()
    ac.application_context_name = req.application_context_name
    ac.calling_ae_title = req.calling_ae_title
    ac.called_ae_title = req.called_ae_title
    results = []
    accepted: dict[int, UID] = {}
    for proposed in req.presentation_context_definition_list:
        cx = PresentationContext()
        cx.context_id = proposed.context_id
        cx.abstract_syntax = proposed.abstract_syntax
        cx.transfer_syntax = [proposed.transfer_syntax[0]]
        cx.result = 0x00  # acceptance (PS3.8 §9.3.3.2 Table 9-18)
        results.append(cx)
        accepted[int(proposed.context_id)] = UID(proposed.transfer_syntax[0])
    ac.presentation_context_definition_results_list = results
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = MAX_PDU
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = UID(LAB_IMPLEMENTATION_UID)
    ac.user_information = [max_length, impl]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(ac)
    return pdu.encode(), accepted


def corrupt_item_lengths(ac_pdu: bytes) -> bytes:
    """Keep the PDU length right but make the first variable item (the Application Context
    item, PS3.8 §9.3.3.1) claim 0xFFFF bytes, far past the end of the PDU."""
    first_item = 6 + 68  # header + fixed fields of the A-ASSOCIATE-AC (PS3.8 Table 9-17)
    return ac_pdu[: first_item + 2] + b"\xff\xff" + ac_pdu[first_item + 4 :]


def abort_pdu(source: int = 0, reason: int = 0) -> bytes:
    """A-ABORT (PS3.8 §9.3.8): source 0 = service-user, 2 = service-provider."""
    return _HEADER.pack(ABORT, 4) + bytes([0, 0, source, reason])


def release_rp_pdu() -> bytes:
    return _HEADER.pack(RELEASE_RP, 4) + b"\x00\x00\x00\x00"


class MessageReader:
    """Reassembles DIMSE messages from P-DATA-TF PDUs (PS3.8 §9.3.5, Annex E)."""

    def __init__(self) -> None:
        self._msg = DIMSEMessage()

    def feed(self, pdata_pdu: bytes) -> list[tuple[int, Dataset, bytes]]:
        """Return (context id, command set, data set bytes) per message this PDU completes."""
        pdu = P_DATA_TF()
        pdu.decode(pdata_pdu)
        done: list[tuple[int, Dataset, bytes]] = []
        for item in pdu.presentation_data_value_items:
            pdata = P_DATA_TF()
            pdata.presentation_data_value_items.append(item)
            if self._msg.decode_msg(pdata.to_primitive()):
                data = self._msg.data_set
                raw = data.getvalue() if isinstance(data, BytesIO) else b""
                done.append((int(self._msg.context_id), self._msg.command_set, raw))
                self._msg = DIMSEMessage()
        return done


def decode_dataset(raw: bytes, transfer_syntax: UID) -> Dataset:
    return decode(BytesIO(raw), transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)


def _pdus(msg: DIMSEMessage, context_id: int) -> bytes:
    out = bytearray()
    for primitive in msg.encode_msg(context_id, MAX_PDU):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        out += pdu.encode()
    return bytes(out)


def find_rsp(
    context_id: int,
    request: Dataset,
    status: int,
    identifier: Dataset | None = None,
    transfer_syntax: UID = ImplicitVRLittleEndian,
) -> bytes:
    """P-DATA-TF PDUs carrying one C-FIND-RSP (PS3.7 §9.3.2.2) to ``request``."""
    primitive = C_FIND()
    primitive.MessageIDBeingRespondedTo = request.MessageID
    primitive.AffectedSOPClassUID = request.AffectedSOPClassUID
    primitive.Status = status
    if identifier is not None:
        encoded = encode(identifier, transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)
        primitive.Identifier = BytesIO(encoded)
    msg = C_FIND_RSP()
    msg.primitive_to_message(primitive)
    return _pdus(msg, context_id)


def echo_rsp(context_id: int, request: Dataset) -> bytes:
    """P-DATA-TF PDUs carrying a successful C-ECHO-RSP (PS3.7 §9.3.5.2)."""
    primitive = C_ECHO()
    primitive.MessageIDBeingRespondedTo = request.MessageID
    primitive.AffectedSOPClassUID = request.AffectedSOPClassUID
    primitive.Status = 0x0000
    msg = C_ECHO_RSP()
    msg.primitive_to_message(primitive)
    return _pdus(msg, context_id)
