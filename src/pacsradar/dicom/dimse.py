"""DIMSE command sets (PS3.7 §6.3, §9.3) and query identifiers (PS3.4 C.4.1), bounded.

Why not pydicom/pynetdicom here: an audit sends four fixed requests (C-ECHO, C-FIND, C-CANCEL,
C-MOVE) and reads four small fields of each response command, plus a handful of attributes of
each C-FIND identifier. Building a pydicom ``Dataset`` per response was a tenth of the CPU per
target in a sweep, and importing pydicom a third of a second of every start. The layouts are
PS3.5 §7.1 (data elements) and PS3.7 §6.3.1 (command sets: always Implicit VR Little Endian);
``tests/unit/test_dicom_codec.py`` checks every encoding against pynetdicom's and the data
dictionary below against pydicom's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pacsradar.errors import ProtocolError

# PS3.7 §9.3 / Annex E: Command Field values.
C_ECHO_RQ = 0x0030
C_FIND_RQ = 0x0020
C_MOVE_RQ = 0x0021
C_CANCEL_RQ = 0x0FFF
#: PS3.7 §6.3.1: CommandDataSetType 0x0101 means "no data set"; anything else means one follows.
NO_DATA_SET = 0x0101
HAS_DATA_SET = 0x0001
#: PS3.7 §9.1.2.1.3 Priority: 2 is LOW. We are a guest on a clinical system.
PRIORITY_LOW = 0x0002

# PS3.7 Annex E command elements (group 0000).
_GROUP_LENGTH = 0x0000
_AFFECTED_SOP_CLASS = 0x0002
_COMMAND_FIELD = 0x0100
_MESSAGE_ID = 0x0110
_MESSAGE_ID_RESPONDED = 0x0120
_MOVE_DESTINATION = 0x0600
_PRIORITY = 0x0700
_DATA_SET_TYPE = 0x0800
_STATUS = 0x0900

_ELEM_IMPLICIT = struct.Struct("<HHL")  # group, element, 32-bit length (PS3.5 §7.1.3)
_ELEM_EXPLICIT = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length (PS3.5 §7.1.2)
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<L")
UNDEFINED = 0xFFFFFFFF
MAX_DEPTH = 32

# PS3.5 §7.1.2: VRs whose explicit encoding has 2 reserved bytes and a 32-bit length.
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD


# -- command sets ----------------------------------------------------------------------------


def _pad(value: bytes, pad: bytes) -> bytes:
    # PS3.5 §6.2: values have even length; UI pads with NUL, text VRs with a space.
    return value + pad if len(value) % 2 else value


def _command(elements: dict[int, bytes]) -> bytes:
    body = b"".join(
        _ELEM_IMPLICIT.pack(0, elem, len(value)) + value for elem, value in sorted(elements.items())
    )
    # PS3.7 §6.3.1: CommandGroupLength (UL) is the byte count of the elements after it.
    return _ELEM_IMPLICIT.pack(0, _GROUP_LENGTH, 4) + _U32.pack(len(body)) + body


def _us(value: int) -> bytes:
    return _U16.pack(value & 0xFFFF)


def _ui(uid: str) -> bytes:
    return _pad(uid.encode("ascii"), b"\x00")


def echo_rq(message_id: int) -> bytes:
    """PS3.7 §9.3.5.1 C-ECHO-RQ on the Verification SOP Class."""
    return _command(
        {
            _AFFECTED_SOP_CLASS: _ui("1.2.840.10008.1.1"),
            _COMMAND_FIELD: _us(C_ECHO_RQ),
            _MESSAGE_ID: _us(message_id),
            _DATA_SET_TYPE: _us(NO_DATA_SET),
        }
    )


def find_rq(message_id: int, sop_class: str) -> bytes:
    """PS3.7 §9.3.2.1 C-FIND-RQ; the identifier follows as the data set."""
    return _command(
        {
            _AFFECTED_SOP_CLASS: _ui(sop_class),
            _COMMAND_FIELD: _us(C_FIND_RQ),
            _MESSAGE_ID: _us(message_id),
            _PRIORITY: _us(PRIORITY_LOW),
            _DATA_SET_TYPE: _us(HAS_DATA_SET),
        }
    )


def cancel_rq(message_id_responded: int) -> bytes:
    """PS3.7 §9.3.2.3 C-CANCEL-RQ for an outstanding C-FIND."""
    return _command(
        {
            _COMMAND_FIELD: _us(C_CANCEL_RQ),
            _MESSAGE_ID_RESPONDED: _us(message_id_responded),
            _DATA_SET_TYPE: _us(NO_DATA_SET),
        }
    )


def move_rq(message_id: int, sop_class: str, destination: str) -> bytes:
    """PS3.7 §9.3.4.1 C-MOVE-RQ; used only by the opt-in intrusive check."""
    aet = destination.encode("ascii", "replace")[:16]
    return _command(
        {
            _AFFECTED_SOP_CLASS: _ui(sop_class),
            _COMMAND_FIELD: _us(C_MOVE_RQ),
            _MESSAGE_ID: _us(message_id),
            _MOVE_DESTINATION: _pad(aet, b" "),
            _PRIORITY: _us(PRIORITY_LOW),
            _DATA_SET_TYPE: _us(HAS_DATA_SET),
        }
    )


@dataclass(frozen=True)
class Command:
    """The response fields an audit reads; nothing else of the peer's command set is kept."""

    command_field: int | None = None
    status: int | None = None
    message_id_responded: int | None = None
    data_set_type: int | None = None

    @property
    def has_data_set(self) -> bool:
        return self.data_set_type is not None and self.data_set_type != NO_DATA_SET


_US_FIELDS = {
    _COMMAND_FIELD: "command_field",
    _STATUS: "status",
    _MESSAGE_ID_RESPONDED: "message_id_responded",
    _DATA_SET_TYPE: "data_set_type",
}


def decode_command(raw: bytes) -> Command:
    """A command set is Implicit VR Little Endian, group 0000 only (PS3.7 §6.3.1)."""
    values: dict[str, int] = {}
    pos, end = 0, len(raw)
    while pos < end:
        if end - pos < _ELEM_IMPLICIT.size:
            raise ProtocolError("malformed DIMSE command set from peer (truncated element)")
        group, elem, length = _ELEM_IMPLICIT.unpack_from(raw, pos)
        pos += _ELEM_IMPLICIT.size
        if group != 0 or length == UNDEFINED or pos + length > end:
            raise ProtocolError("malformed DIMSE command set from peer (bad element)")
        name = _US_FIELDS.get(elem)
        if name is not None:
            if length != 2:
                raise ProtocolError("malformed DIMSE command set from peer (US length)")
            values[name] = _U16.unpack_from(raw, pos)[0]
        pos += length
    return Command(**values)


# -- identifiers (data sets) -----------------------------------------------------------------

#: PS3.6 Table 6-1 tag and VR of every attribute we put in or read from an identifier.
#: ``tests/unit/test_dicom_codec.py`` checks each against pydicom's data dictionary.
DICTIONARY: dict[str, tuple[int, bytes]] = {
    "SOPInstanceUID": (0x00080018, b"UI"),
    "QueryRetrieveLevel": (0x00080052, b"CS"),
    "RetrieveAETitle": (0x00080054, b"AE"),
    "StudyDate": (0x00080020, b"DA"),
    "StudyTime": (0x00080030, b"TM"),
    "AccessionNumber": (0x00080050, b"SH"),
    "ModalitiesInStudy": (0x00080061, b"CS"),
    "InstitutionName": (0x00080080, b"LO"),
    "ReferringPhysicianName": (0x00080090, b"PN"),
    "StudyDescription": (0x00081030, b"LO"),
    "PatientName": (0x00100010, b"PN"),
    "PatientID": (0x00100020, b"LO"),
    "IssuerOfPatientID": (0x00100021, b"LO"),
    "PatientBirthDate": (0x00100030, b"DA"),
    "PatientSex": (0x00100040, b"CS"),
    "OtherPatientIDs": (0x00101000, b"LO"),
    "PatientAge": (0x00101010, b"AS"),
    "StudyInstanceUID": (0x0020000D, b"UI"),
    "SeriesInstanceUID": (0x0020000E, b"UI"),
    "StudyID": (0x00200010, b"SH"),
    "NumberOfPatientRelatedStudies": (0x00201200, b"IS"),
    "NumberOfPatientRelatedSeries": (0x00201202, b"IS"),
    "NumberOfPatientRelatedInstances": (0x00201204, b"IS"),
    "NumberOfStudyRelatedSeries": (0x00201206, b"IS"),
    "NumberOfStudyRelatedInstances": (0x00201208, b"IS"),
    # PS3.4 K.6.1.2 Modality Worklist and CC.2.5 UPS attributes (dicom.worklist, dicom.ups)
    "SOPClassUID": (0x00080016, b"UI"),
    "Modality": (0x00080060, b"CS"),
    "RequestingPhysician": (0x00321032, b"PN"),
    "RequestedProcedureDescription": (0x00321060, b"LO"),
    "AdmissionID": (0x00380010, b"LO"),
    "ScheduledStationAETitle": (0x00400001, b"AE"),
    "ScheduledProcedureStepStartDate": (0x00400002, b"DA"),
    "ScheduledProcedureStepStartTime": (0x00400003, b"TM"),
    "ScheduledPerformingPhysicianName": (0x00400006, b"PN"),
    "ScheduledProcedureStepDescription": (0x00400007, b"LO"),
    "ScheduledProcedureStepID": (0x00400009, b"SH"),
    "ScheduledStationName": (0x00400010, b"SH"),
    "ScheduledProcedureStepSequence": (0x00400100, b"SQ"),
    "RequestedProcedureID": (0x00401001, b"SH"),
    "ScheduledProcedureStepStartDateTime": (0x00404005, b"DT"),
    "ProcedureStepState": (0x00741000, b"CS"),
    "ProcedureStepLabel": (0x00741204, b"LO"),
}


def encode_identifier(values: Sequence[tuple[str, str]], implicit: bool) -> bytes:
    """Encode (keyword, value) pairs; an empty value is a universal-match return key."""
    out = bytearray()
    for tag, vr, value in sorted((*DICTIONARY[keyword], text.encode("ascii")) for keyword, text in values):
        value = _pad(value, b"\x00" if vr == b"UI" else b" ")
        if implicit:
            out += _ELEM_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, len(value))
        else:
            out += _ELEM_EXPLICIT.pack(tag >> 16, tag & 0xFFFF, vr, len(value))
        out += value
    return bytes(out)


def encode_nested(
    values: Sequence[tuple[str, str | Sequence[tuple[str, str]]]], implicit: bool
) -> bytes:
    """Like :func:`encode_identifier`, where a value that is a sequence of pairs is a sequence
    (SQ) of one item of those return keys (PS3.4 C.2.2.2.6 sequence matching: an empty item
    asks for every item). Defined lengths throughout (PS3.5 §7.5.1)."""
    out = bytearray()
    for tag, vr, value in sorted(
        (*DICTIONARY[keyword], text) for keyword, text in values
    ):
        if isinstance(value, str):
            out += encode_identifier(((_KEYWORD[tag], value),), implicit)
            continue
        body = encode_identifier(value, implicit)
        item = _U16.pack(0xFFFE) + _U16.pack(0xE000) + _U32.pack(len(body)) + body
        if implicit:
            out += _ELEM_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, len(item))
        else:
            out += _ELEM_EXPLICIT.pack(tag >> 16, tag & 0xFFFF, vr, 0) + _U32.pack(len(item))
        out += item
    return bytes(out)


def _element(raw: bytes, pos: int, end: int, implicit: bool) -> tuple[int, int, int]:
    """(tag, value start, length) of the element at ``pos``; the length may be UNDEFINED."""
    if end - pos < 8:
        raise ProtocolError("malformed C-FIND identifier from peer (truncated element)")
    if implicit:
        group, elem, length = _ELEM_IMPLICIT.unpack_from(raw, pos)
        return group << 16 | elem, pos + 8, length
    group, elem, vr, length = _ELEM_EXPLICIT.unpack_from(raw, pos)
    if group == 0xFFFE:  # items and delimiters have no VR, in any transfer syntax (PS3.5 §7.5)
        return group << 16 | elem, pos + 8, _U32.unpack_from(raw, pos + 4)[0]
    if vr in _LONG_VRS:
        if end - pos < 12:
            raise ProtocolError("malformed C-FIND identifier from peer (truncated element)")
        return group << 16 | elem, pos + 12, _U32.unpack_from(raw, pos + 8)[0]
    return group << 16 | elem, pos + 8, length


def _skip_undefined(raw: bytes, pos: int, implicit: bool) -> int:
    """Skip an undefined-length sequence starting at its first item (PS3.5 §7.5.2): an explicit
    stack of 'in a sequence' / 'in an item' states, bounded depth, every length checked."""
    end = len(raw)
    stack = [True]  # True: inside a sequence (expect items); False: inside an item
    while stack:
        if len(stack) > MAX_DEPTH:
            raise ProtocolError("C-FIND identifier nests sequences too deeply")
        tag, value, length = _element(raw, pos, end, implicit)
        if stack[-1]:
            if tag == _SEQ_DELIM:
                stack.pop()
                pos = value
            elif tag != _ITEM:
                raise ProtocolError("malformed sequence in C-FIND identifier (expected an item)")
            elif length == UNDEFINED:
                stack.append(False)
                pos = value
            else:
                pos = _checked_end(value, length, end)
        elif tag == _ITEM_DELIM:
            stack.pop()
            pos = value
        elif length == UNDEFINED:
            stack.append(True)
            pos = value
        else:
            pos = _checked_end(value, length, end)
    return pos


def _checked_end(value: int, length: int, end: int) -> int:
    if value + length > end:
        raise ProtocolError("malformed C-FIND identifier from peer (length past the end)")
    return value + length


def top_level_values(raw: bytes, implicit: bool, wanted: frozenset[int]) -> dict[int, bytes]:
    """The values of the ``wanted`` top-level elements, trailing padding stripped; sequences are
    skipped, not read. Bounded by ``len(raw)``: every step advances at least 8 bytes."""
    found: dict[int, bytes] = {}
    pos, end = 0, len(raw)
    while pos < end:
        tag, value, length = _element(raw, pos, end, implicit)
        if length == UNDEFINED:
            pos = _skip_undefined(raw, value, implicit)
            continue
        pos = _checked_end(value, length, end)
        if tag in wanted:
            found[tag] = raw[value:pos].strip(b" \x00")
    return found


_KEYWORD: dict[int, str] = {tag: keyword for keyword, (tag, _vr) in DICTIONARY.items()}


def sequence_items(
    raw: bytes, implicit: bool, sequence: int, wanted: frozenset[int], *, max_items: int = 64
) -> list[dict[int, bytes]]:
    """The ``wanted`` values of each item of the top-level ``sequence`` (defined or undefined
    lengths, PS3.5 §7.5), at most ``max_items`` items; nested sequences inside an item are
    skipped. Bounded like :func:`top_level_values`: every length is checked against ``raw``."""
    pos, end = 0, len(raw)
    while pos < end:
        tag, value, length = _element(raw, pos, end, implicit)
        if tag != sequence:
            pos = _skip(raw, value, length, end, implicit)
            continue
        seq_end = end if length == UNDEFINED else _checked_end(value, length, end)
        return _items(raw, value, seq_end, implicit, wanted, max_items)
    return []


def _items(
    raw: bytes, pos: int, end: int, implicit: bool, wanted: frozenset[int], max_items: int
) -> list[dict[int, bytes]]:
    items: list[dict[int, bytes]] = []
    while pos < end and len(items) < max_items:
        tag, value, length = _element(raw, pos, end, implicit)
        if tag == _SEQ_DELIM:
            break
        if tag != _ITEM:
            raise ProtocolError("malformed sequence in C-FIND identifier (expected an item)")
        if length == UNDEFINED:
            # An undefined-length item ends at its delimiter; find it by skipping the item as a
            # one-item sequence would be skipped (bounded, :func:`_skip_undefined`).
            item_end = _item_end(raw, value, implicit)
            body = raw[value:item_end]
            pos = item_end + 8
        else:
            pos = _checked_end(value, length, end)
            body = raw[value:pos]
        items.append(top_level_values(body, implicit, wanted))
    return items


def _item_end(raw: bytes, pos: int, implicit: bool) -> int:
    """Offset of the Item Delimitation Item that ends the undefined-length item at ``pos``."""
    end = len(raw)
    while True:
        tag, value, length = _element(raw, pos, end, implicit)
        if tag == _ITEM_DELIM:
            return pos
        pos = _skip(raw, value, length, end, implicit)


def _skip(raw: bytes, value: int, length: int, end: int, implicit: bool) -> int:
    """The offset after an element whose value starts at ``value`` (either length form)."""
    return _skip_undefined(raw, value, implicit) if length == UNDEFINED else _checked_end(value, length, end)
