"""A small, bounded asyncio DICOM association client (PS3.8 Upper Layer, PS3.7 DIMSE).

It does only what an audit needs: associate (with our own Implementation Class UID, PS3.7
D.3.3.2), C-ECHO, C-FIND with C-CANCEL, C-MOVE (intrusive checks only), release and abort.
Encoding and decoding of PDUs and DIMSE command sets is pynetdicom's; framing, reassembly and
every size bound are ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.dimse_messages import (
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_MOVE_RQ,
    DIMSEMessage,
)
from pynetdicom.dimse_primitives import C_CANCEL, C_ECHO, C_FIND, C_MOVE
from pynetdicom.dsutils import decode as decode_dataset
from pynetdicom.dsutils import encode as encode_dataset
from pynetdicom.pdu import A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

from pacsradar import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsradar.dicom import ul
from pacsradar.errors import (
    NotDicomError,
    PeerAborted,
    ProtocolError,
    ReadTimeout,
    ScanError,
    SizeLimitError,
)
from pacsradar.net import Stream
from pacsradar.phi import peer_text

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1 DICOM Application Context Name
#: Our receive bound per PDU advertised in Maximum Length Notification (PS3.8 D.1).
OUR_MAX_PDU = 65536
#: Bound on a whole reassembled DIMSE message (command + data set). C-FIND identifiers are tiny.
MAX_MESSAGE_BYTES = 1024 * 1024


class AssociationKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ABORTED = "aborted"


@dataclass(frozen=True)
class ProposedContext:
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = (ImplicitVRLittleEndian,)


@dataclass(frozen=True)
class AssociationResult:
    """The peer's answer to our A-ASSOCIATE-RQ, reduced to facts (no raw bytes kept)."""

    kind: AssociationKind
    called_aet: str
    calling_aet: str
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    max_pdu: int | None = None
    #: abstract syntax -> (presentation context id, transfer syntax), for accepted contexts
    accepted: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: abstract syntax -> result code (PS3.8 §9.3.3.2: 1 user-rejection, 2 no-reason,
    #: 3 abstract syntax not supported, 4 transfer syntaxes not supported)
    refused: dict[str, int] = field(default_factory=dict)
    user_identity_response: bool = False
    # PS3.8 §9.3.4 A-ASSOCIATE-RJ fields
    rj_result: int | None = None
    rj_source: int | None = None
    rj_reason: int | None = None
    # PS3.8 §9.3.8 A-ABORT fields
    abort_source: int | None = None
    abort_reason: int | None = None

    @property
    def transient(self) -> bool:
        """A rejected-transient RJ (result 2) says 'busy', not 'who are you'."""
        return self.kind is AssociationKind.REJECTED and self.rj_result == 2


#: PS3.8 Table 9-21: result/source/reason of A-ASSOCIATE-RJ, in words.
RJ_REASONS: dict[tuple[int, int], str] = {
    (1, 1): "no-reason-given",
    (1, 2): "application-context-name-not-supported",
    (1, 3): "calling-AE-title-not-recognized",
    (1, 7): "called-AE-title-not-recognized",
    (2, 1): "no-reason-given",
    (2, 2): "protocol-version-not-supported",
    (3, 1): "temporary-congestion",
    (3, 2): "local-limit-exceeded",
}


def describe_rj(result: AssociationResult) -> str:
    if result.rj_source is None or result.rj_reason is None:
        return "unknown"
    res = {1: "rejected-permanent", 2: "rejected-transient"}.get(result.rj_result or 0, "invalid")
    src = {1: "service-user", 2: "service-provider (ACSE)", 3: "service-provider (presentation)"}
    words = RJ_REASONS.get((result.rj_source, result.rj_reason), "reserved")
    source = src.get(result.rj_source, "invalid")
    return f"{res}, source {result.rj_source} {source}, reason {result.rj_reason} {words}"


@dataclass(frozen=True)
class UserIdentity:
    """PS3.7 D.3.3.7: type 2 is username + passcode."""

    username: bytes
    passcode: bytes
    positive_response_requested: bool = True


@dataclass(frozen=True)
class DimseMessage:
    command: Dataset
    dataset: bytes | None
    context_id: int

    @property
    def status(self) -> int | None:
        value = self.command.get("Status")
        return int(value) if value is not None else None


class DicomClient:
    """One association over one stream. Not reusable: open a new stream per association."""

    def __init__(self, stream: Stream, *, max_pdu_bytes: int) -> None:
        self.stream = stream
        self.max_pdu_bytes = max_pdu_bytes
        self.assoc: AssociationResult | None = None
        self._contexts: dict[int, str] = {}
        self._message_ids = itertools.count(1)
        self._released = False

    # -- association -----------------------------------------------------------------------
    async def associate(
        self,
        called_aet: str,
        calling_aet: str,
        contexts: Sequence[ProposedContext],
        *,
        user_identity: UserIdentity | None = None,
    ) -> AssociationResult:
        raw = encode_associate_rq(called_aet, calling_aet, tuple(contexts), user_identity)
        # PS3.8 §9.3.2: presentation context IDs are odd integers 1..255, in our order.
        self._contexts = {1 + 2 * i: c.abstract_syntax for i, c in enumerate(contexts)}
        await self.stream.write(raw)
        try:
            pdu = await ul.read_pdu(self.stream, self.max_pdu_bytes)
        except ReadTimeout:
            await self._nudge_line_based_peer()
            raise
        if pdu.pdu_type == ul.PDU_ASSOCIATE_AC:
            self.assoc = self._parse_ac(pdu, called_aet, calling_aet)
        elif pdu.pdu_type == ul.PDU_ASSOCIATE_RJ:
            rj = ul.decode_rj(pdu)
            self.assoc = AssociationResult(
                kind=AssociationKind.REJECTED,
                called_aet=called_aet,
                calling_aet=calling_aet,
                rj_result=_int_or_none(rj.result),
                rj_source=_int_or_none(rj.source),
                rj_reason=_int_or_none(rj.reason_diagnostic),
            )
        elif pdu.pdu_type == ul.PDU_ABORT:
            ab = ul.decode_abort(pdu)
            self.assoc = AssociationResult(
                kind=AssociationKind.ABORTED,
                called_aet=called_aet,
                calling_aet=calling_aet,
                abort_source=_int_or_none(ab.source),
                abort_reason=_int_or_none(ab.reason_diagnostic),
            )
        else:
            raise ProtocolError(f"unexpected PDU type 0x{pdu.pdu_type:02x} in reply to A-ASSOCIATE-RQ")
        return self.assoc

    async def _nudge_line_based_peer(self) -> None:
        """A silent reply may be an HTTP server still waiting for the end of a request line.

        Our A-ASSOCIATE-RQ holds no CR LF, so such servers wait. Having given up on DICOM, we
        send a blank line and look, briefly, for an HTTP status line: nmap-style service
        detection without an extra connection.
        """
        try:
            await self.stream.write(b"\r\n\r\n")
            head = await asyncio.wait_for(self.stream.reader.read(5), 0.5)
        except (TimeoutError, OSError, ScanError):
            return
        if ul.classify_banner(head) == "http":
            raise NotDicomError("peer answered with a non-DICOM byte stream (http)", "http")

    def _parse_ac(self, pdu: ul.RawPdu, called: str, calling: str) -> AssociationResult:
        ac = ul.decode_ac(pdu)
        try:
            prim = ac.to_primitive()
            results: list[PresentationContext] = list(prim.presentation_context_definition_results_list)
            user_info = list(prim.user_information)
        except Exception as exc:  # pynetdicom raises assorted types on odd items
            raise ProtocolError(f"malformed A-ASSOCIATE-AC items ({type(exc).__name__})") from exc
        accepted: dict[str, tuple[int, str]] = {}
        refused: dict[str, int] = {}
        for ctx in results:
            cid = ctx.context_id
            if cid is None or cid not in self._contexts:
                continue  # a context we never proposed: ignore rather than trust
            abstract = self._contexts[cid]
            if ctx.result == 0 and ctx.transfer_syntax:
                accepted[abstract] = (cid, str(ctx.transfer_syntax[0]))
            else:
                refused[abstract] = int(ctx.result or 0)
        impl_uid = impl_ver = None
        max_pdu = None
        ui_response = False
        for item in user_info:
            if isinstance(item, MaximumLengthNotification):
                max_pdu = int(item.maximum_length_received or 0)
            elif isinstance(item, ImplementationClassUIDNotification):
                impl_uid = peer_text(item.implementation_class_uid or "", 64)
            elif isinstance(item, ImplementationVersionNameNotification):
                impl_ver = peer_text(item.implementation_version_name or b"", 16)
            elif isinstance(item, UserIdentityNegotiation):
                ui_response = True
        return AssociationResult(
            kind=AssociationKind.ACCEPTED,
            called_aet=called,
            calling_aet=calling,
            implementation_class_uid=impl_uid or None,
            implementation_version_name=impl_ver or None,
            max_pdu=max_pdu,
            accepted=accepted,
            refused=refused,
            user_identity_response=ui_response,
        )

    # -- DIMSE -----------------------------------------------------------------------------
    def context_for(self, abstract_syntax: str) -> tuple[int, str] | None:
        if self.assoc is None:
            return None
        return self.assoc.accepted.get(abstract_syntax)

    def _peer_max_pdu(self) -> int:
        peer = self.assoc.max_pdu if self.assoc else 0
        # 0 means 'no limit' (PS3.8 D.1.1); stay modest anyway.
        return min(peer or OUR_MAX_PDU, OUR_MAX_PDU)

    async def send(self, message: DIMSEMessage, context_id: int) -> None:
        """Encode one DIMSE message into P-DATA-TF PDUs and send them in a single write."""
        await self.stream.write(_p_data(message, context_id, self._peer_max_pdu()))

    async def receive(self) -> DimseMessage:
        """Reassemble one DIMSE message from P-DATA PDVs (PS3.8 Annex E), bounded in size."""
        command = BytesIO()
        data = BytesIO()
        total = 0
        command_done = False
        has_dataset: bool | None = None
        context_id = 0
        while True:
            pdu = await ul.read_pdu(self.stream, self.max_pdu_bytes)
            if pdu.pdu_type == ul.PDU_ABORT:
                ab = ul.decode_abort(pdu)
                raise PeerAborted(
                    f"peer aborted the association (source {ab.source}, reason {ab.reason_diagnostic})"
                )
            if pdu.pdu_type == ul.PDU_RELEASE_RQ:
                await self.stream.write(ul.encode_release_rp())
                raise ProtocolError("peer released the association in the middle of an operation")
            if pdu.pdu_type != ul.PDU_P_DATA_TF:
                raise ProtocolError(f"unexpected PDU type 0x{pdu.pdu_type:02x} during DIMSE")
            for item in ul.decode_pdata(pdu).presentation_data_value_items:
                cid, pdv = item.context_id or 0, item.data or b""
                if not pdv:
                    raise ProtocolError("empty presentation data value")
                total += len(pdv)
                if total > MAX_MESSAGE_BYTES:
                    raise SizeLimitError(f"DIMSE message exceeds our bound of {MAX_MESSAGE_BYTES} bytes")
                header, fragment = pdv[0], pdv[1:]
                context_id = int(cid)
                if header & 0x01:  # command fragment (PS3.8 E.2)
                    if command_done:
                        raise ProtocolError("command fragment after the last command fragment")
                    command.write(fragment)
                    if header & 0x02:
                        command_done = True
                        cmd = _decode_command(command.getvalue())
                        has_dataset = int(cmd.get("CommandDataSetType", 0x0101)) != 0x0101
                        if not has_dataset:
                            return DimseMessage(cmd, None, context_id)
                else:
                    if not command_done:
                        raise ProtocolError("data set fragment before the command set")
                    data.write(fragment)
                    if header & 0x02:
                        return DimseMessage(_decode_command(command.getvalue()), data.getvalue(), context_id)

    def next_message_id(self) -> int:
        return next(self._message_ids) & 0xFFFF

    async def echo(self) -> int | None:
        ctx = self.context_for("1.2.840.10008.1.1")
        if ctx is None:
            raise ProtocolError("Verification context was not accepted")
        raw = _echo_rq(ctx[0], self.next_message_id(), self._peer_max_pdu())
        await self.stream.write(raw)
        return (await self.receive()).status

    async def find(
        self, sop_class: str, identifier: Dataset | bytes, *, message_id: int | None = None
    ) -> AsyncGenerator[DimseMessage, None]:
        """Yield every C-FIND response (pending and final). The caller may stop early and cancel."""
        ctx = self.context_for(sop_class)
        if ctx is None:
            raise ProtocolError("query context was not accepted")
        cid, ts = ctx
        raw = identifier if isinstance(identifier, bytes) else encode_identifier(identifier, ts)
        mid = message_id if message_id is not None else self.next_message_id()
        await self.stream.write(_find_rq(cid, mid, sop_class, raw, self._peer_max_pdu()))
        while True:
            rsp = await self.receive()
            yield rsp
            status = rsp.status
            if status is None or status not in (0xFF00, 0xFF01):
                return

    async def cancel(self, sop_class: str, message_id: int) -> None:
        ctx = self.context_for(sop_class)
        if ctx is None:
            return
        prim = C_CANCEL()
        prim.MessageIDBeingRespondedTo = message_id
        msg = C_CANCEL_RQ()
        msg.primitive_to_message(prim)
        await self.send(msg, ctx[0])

    async def move(self, sop_class: str, identifier: Dataset, destination: str) -> DimseMessage:
        """Send one C-MOVE and return the first response. Used by the opt-in intrusive check."""
        ctx = self.context_for(sop_class)
        if ctx is None:
            raise ProtocolError("retrieve context was not accepted")
        cid, ts = ctx
        prim = C_MOVE()
        prim.MessageID = self.next_message_id()
        prim.AffectedSOPClassUID = sop_class
        prim.Priority = 2
        prim.MoveDestination = destination
        prim.Identifier = BytesIO(encode_identifier(identifier, ts))
        msg = C_MOVE_RQ()
        msg.primitive_to_message(prim)
        await self.send(msg, cid)
        return await self.receive()

    async def release(self) -> None:
        """Orderly A-RELEASE (PS3.8 §7.2); on any trouble fall back to A-ABORT."""
        if self._released or self.assoc is None or self.assoc.kind is not AssociationKind.ACCEPTED:
            return
        self._released = True
        try:
            await self.stream.write(ul.encode_release_rq())
            for _ in range(8):  # tolerate a few stray P-DATA (e.g. late C-FIND responses)
                pdu = await ul.read_pdu(self.stream, self.max_pdu_bytes)
                if pdu.pdu_type in (ul.PDU_RELEASE_RP, ul.PDU_ABORT):
                    return
            await self.abort()
        except Exception:  # release is best-effort; the stream closes regardless
            await self.abort()

    async def abort(self) -> None:
        self._released = True
        with contextlib.suppress(Exception):  # the peer may be gone already
            await self.stream.write(ul.encode_abort())


def build_associate_rq(
    called_aet: str,
    calling_aet: str,
    contexts: Sequence[ProposedContext],
    *,
    user_identity: UserIdentity | None = None,
) -> A_ASSOCIATE_RQ:
    if len(contexts) > 128:
        raise ValueError("at most 128 presentation contexts per association (PS3.8 §9.3.2.2)")
    prim = A_ASSOCIATE()
    prim.application_context_name = APPLICATION_CONTEXT
    prim.calling_ae_title = calling_aet
    prim.called_ae_title = called_aet
    pcs: list[PresentationContext] = []
    for i, ctx in enumerate(contexts):
        pc = PresentationContext()
        pc.context_id = 1 + 2 * i
        pc.abstract_syntax = ctx.abstract_syntax
        pc.transfer_syntax = list(ctx.transfer_syntaxes)
        pcs.append(pc)
    prim.presentation_context_definition_list = pcs
    ml = MaximumLengthNotification()
    ml.maximum_length_received = OUR_MAX_PDU
    uid = ImplementationClassUIDNotification()
    uid.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ver = ImplementationVersionNameNotification()
    ver.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    items: list[Any] = [ml, uid, ver]
    if user_identity is not None:
        ui = UserIdentityNegotiation()
        ui.user_identity_type = 2
        ui.primary_field = user_identity.username
        ui.secondary_field = user_identity.passcode
        ui.positive_response_requested = user_identity.positive_response_requested
        items.append(ui)
    prim.user_information = items
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(prim)
    return rq


def _p_data(message: DIMSEMessage, context_id: int, max_pdu: int) -> bytes:
    chunks = []
    for pdata in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(pdata)
        chunks.append(bytes(pdu.encode()))
    return b"".join(chunks)


# Every target gets the same few requests (same context ids and message ids, in the same order),
# so their encodings are cached: pydicom's value validation made them the hot spot of a sweep.
@functools.lru_cache(maxsize=64)
def _echo_rq(context_id: int, message_id: int, max_pdu: int) -> bytes:
    prim = C_ECHO()
    prim.MessageID = message_id
    prim.AffectedSOPClassUID = "1.2.840.10008.1.1"
    msg = C_ECHO_RQ()
    msg.primitive_to_message(prim)
    return _p_data(msg, context_id, max_pdu)


@functools.lru_cache(maxsize=64)
def _find_rq(context_id: int, message_id: int, sop_class: str, identifier: bytes, max_pdu: int) -> bytes:
    prim = C_FIND()
    prim.MessageID = message_id
    prim.AffectedSOPClassUID = sop_class
    prim.Priority = 2  # LOW: we are a guest on a clinical system (PS3.7 §9.1.2.1.3)
    prim.Identifier = BytesIO(identifier)
    msg = C_FIND_RQ()
    msg.primitive_to_message(prim)
    return _p_data(msg, context_id, max_pdu)


#: PS3.8 Table 9-11: the called AE title is bytes 11-26 and the calling AE title bytes 27-42 of
#: the A-ASSOCIATE-RQ PDU, each 16 bytes space-padded. Everything else in our RQ is the same for
#: every target, so it is encoded once and only the titles are patched in.
_CALLED_AET = slice(10, 26)
_CALLING_AET = slice(26, 42)
_TEMPLATE_AET = "PACSRADARTEMPLAT"


@functools.lru_cache(maxsize=32)
def _rq_template(
    contexts: tuple[ProposedContext, ...], identity_shape: tuple[int, int, bool] | None
) -> bytes:
    identity = None
    if identity_shape is not None:
        # Placeholders of the same lengths as the real username/passcode (PS3.7 D.3.3.7.1),
        # patched in per association, so a random identity does not defeat the cache.
        user_len, pass_len, positive = identity_shape
        identity = UserIdentity(b"\x01" * user_len, b"\x02" * pass_len, positive)
    return ul.encode_rq(build_associate_rq(_TEMPLATE_AET, _TEMPLATE_AET, contexts, user_identity=identity))


def _aet_field(aet: str) -> bytes:
    # PS3.5 Table 6.2-1: AE titles are at most 16 characters of the default repertoire.
    raw = aet.encode("ascii", "replace")[:16]
    return raw.ljust(16, b" ")


def encode_associate_rq(
    called_aet: str,
    calling_aet: str,
    contexts: tuple[ProposedContext, ...],
    user_identity: UserIdentity | None = None,
) -> bytes:
    """The A-ASSOCIATE-RQ bytes for these titles: a cached pynetdicom encoding, titles patched."""
    shape = None
    if user_identity is not None:
        shape = (
            len(user_identity.username),
            len(user_identity.passcode),
            user_identity.positive_response_requested,
        )
    pdu = bytearray(_rq_template(contexts, shape))
    pdu[_CALLED_AET] = _aet_field(called_aet)
    pdu[_CALLING_AET] = _aet_field(calling_aet)
    if user_identity is not None:
        # The User Identity sub-item is the last item of the PDU: ... user, 2-byte length, passcode.
        end = len(pdu)
        n_pass, n_user = len(user_identity.passcode), len(user_identity.username)
        pdu[end - n_pass : end] = user_identity.passcode
        start_user = end - n_pass - 2 - n_user
        pdu[start_user : start_user + n_user] = user_identity.username
    return bytes(pdu)


def encode_identifier(ds: Dataset, transfer_syntax: str) -> bytes:
    implicit = transfer_syntax == ImplicitVRLittleEndian
    encoded = encode_dataset(ds, implicit, True)
    if encoded is None:
        raise ProtocolError("could not encode our own query identifier")
    return bytes(encoded)


def _decode_command(raw: bytes) -> Dataset:
    """Command sets are always Implicit VR Little Endian (PS3.7 §6.3.1)."""
    try:
        ds = decode_dataset(BytesIO(raw), True, True)
        _ = ds.get("CommandField")
        _ = ds.get("Status")
    except Exception as exc:
        raise ProtocolError(f"malformed DIMSE command set from peer ({type(exc).__name__})") from exc
    return ds


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None
