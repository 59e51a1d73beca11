"""A small, bounded asyncio DICOM association client (PS3.8 Upper Layer, PS3.7 DIMSE).

It does only what an audit needs: associate (with our own Implementation Class UID, PS3.7
D.3.3.2), C-ECHO, C-FIND with C-CANCEL, C-MOVE (intrusive checks only), release and abort.
PDUs are encoded and decoded by ``ul`` (PS3.8), command sets and identifiers by ``dimse``
(PS3.7); both are checked against pynetdicom in the tests. Reassembly and every size bound are
here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pacsradar import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from pacsradar.dicom import dimse, ul
from pacsradar.errors import (
    PeerAborted,
    ProtocolError,
    ReadTimeout,
    SizeLimitError,
)
from pacsradar.net import ByteStream
from pacsradar.phi import peer_text

IMPLICIT_VR_LE = "1.2.840.10008.1.2"  # PS3.5 §10.1, the default transfer syntax
#: Our receive bound per PDU advertised in Maximum Length Notification (PS3.8 D.1).
OUR_MAX_PDU = 65536
#: Bound on a whole reassembled DIMSE message (command + data set). C-FIND identifiers are tiny.
MAX_MESSAGE_BYTES = 1024 * 1024
#: Seconds of silence after our A-ASSOCIATE-RQ before the line-based nudge. A slower DICOM peer
#: only costs a second, clean association (see ``DicomContext.association``), never an answer.
NUDGE_AFTER = 0.5
#: The nudge: CR LF ends a line-based server's request line (our RQ holds neither byte), and the
#: four zero bytes complete a 6-byte PDU header (PS3.8 §9.3.1: type, reserved, 4-byte length)
#: of length 0 with the unknown type 0x0D. A DICOM peer that reads it therefore has a whole
#: (unrecognised) PDU and answers, by its AC or by an A-ABORT (PS3.8 §9.2, event 19), instead
#: of waiting for the rest of a header as it would after a bare blank line.
NUDGE = b"\r\n\x00\x00\x00\x00"


class AssociationKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ABORTED = "aborted"


@dataclass(frozen=True)
class ProposedContext:
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = (IMPLICIT_VR_LE,)


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
    #: facts for the honeypot tells (pacsradar.dicom.facts): the user information sub-item
    #: types of an AC in order (PS3.8 D.1, PS3.7 D.3.3), milliseconds from our RQ to the answer,
    #: and a digest of the AC with the echoed AE titles blanked (same software, same digest)
    user_items: tuple[int, ...] = ()
    reply_ms: float | None = None
    ac_digest: str | None = None
    #: (presentation context id, result) in the order the AC listed them (PS3.8 Table 9-17
    #: leaves the order to the implementation: a toolkit trait, pacsradar.dicom.honeypot.toolkit)
    context_order: tuple[tuple[int, int], ...] = ()

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
    command: dimse.Command
    dataset: bytes | None
    context_id: int

    @property
    def status(self) -> int | None:
        return self.command.status


class DicomClient:
    """One association over one stream. Not reusable: open a new stream per association."""

    def __init__(
        self,
        stream: ByteStream,
        *,
        max_pdu_bytes: int,
        assoc_timeout: float | None = None,
        nudge: bool = True,
        silent_listen: float = 0.0,
    ) -> None:
        self.stream = stream
        self.max_pdu_bytes = max_pdu_bytes
        #: how long the peer gets to answer our A-ASSOCIATE-RQ (default: the read timeout)
        self.assoc_timeout = stream.read_timeout if assoc_timeout is None else assoc_timeout
        self.nudge = nudge
        #: a peer that accepted TCP and said nothing within ``assoc_timeout`` gets this long in
        #: all (seconds from our RQ) before it is "no answer": a sleep before a rejection
        #: (dicompot sleeps 5 s) is then scored instead of being "could not test"
        self.silent_listen = silent_listen
        #: True once we sent the line-based nudge: the connection then carries stray bytes
        self.nudged = False
        self.assoc: AssociationResult | None = None
        #: bound on one reassembled DIMSE message; a probe may lower it (pacsradar.dicom.facts)
        self.max_message_bytes = MAX_MESSAGE_BYTES
        #: called as ``observe(identifier, transfer_syntax)`` when a C-FIND starts; what it
        #: returns is fed each response (``add``) and told the end (``close``): facts, no values
        self.find_observer: Callable[[bytes, str], FindObserver] | None = None
        self._contexts: dict[int, str] = {}
        self._message_ids = itertools.count(1)
        self._released = False
        #: the peer ended the association (A-ABORT or A-RELEASE-RQ): nothing more to send
        self._peer_left = False

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
        start = time.monotonic()
        await self.stream.write(raw)
        pdu = await self._association_reply()
        reply_ms = round((time.monotonic() - start) * 1000, 1)
        if pdu.pdu_type == ul.PDU_ASSOCIATE_AC:
            self.assoc = self._parse_ac(pdu, called_aet, calling_aet, reply_ms)
        elif pdu.pdu_type == ul.PDU_ASSOCIATE_RJ:
            result, source, reason = ul.decode_rj(pdu)
            self.assoc = AssociationResult(
                kind=AssociationKind.REJECTED,
                called_aet=called_aet,
                calling_aet=calling_aet,
                rj_result=result,
                rj_source=source,
                rj_reason=reason,
                reply_ms=reply_ms,
            )
        elif pdu.pdu_type == ul.PDU_ABORT:
            source, reason = ul.decode_abort(pdu)
            self.assoc = AssociationResult(
                kind=AssociationKind.ABORTED,
                called_aet=called_aet,
                calling_aet=calling_aet,
                abort_source=source,
                abort_reason=reason,
                reply_ms=reply_ms,
            )
        else:
            raise ProtocolError(f"unexpected PDU type 0x{pdu.pdu_type:02x} in reply to A-ASSOCIATE-RQ")
        return self.assoc

    async def _association_reply(self) -> ul.RawPdu:
        """Wait for the answer to our A-ASSOCIATE-RQ, nudging a line-based peer early.

        Our RQ holds no CR LF, so a line-based server (an HTTP server on a DICOM port) waits for
        the end of a request line and says nothing. A DICOM server answers an RQ in
        milliseconds; one still silent after :data:`NUDGE_AFTER` seconds (or half of
        ``assoc_timeout`` if that is shorter) gets a blank line, and
        an HTTP status line then tells what it is (nmap-style service detection, no extra
        connection). A DICOM server that was only slow still answers the RQ it read first; that
        association carries our stray bytes, so the caller must not use it for DIMSE
        (:attr:`nudged`; :meth:`DicomContext.association` opens a clean one).
        """
        total = self.assoc_timeout
        # The nudge comes early, the patience stays: the whole wait is still ``assoc_timeout``.
        first = min(total / 2, NUDGE_AFTER) if self.nudge else total
        try:
            return await ul.read_pdu(self.stream, self.max_pdu_bytes, header_timeout=first)
        except ReadTimeout as exc:
            if not self.nudge:
                if self.silent_listen <= total:
                    raise ReadTimeout(f"no answer to A-ASSOCIATE-RQ within {total:g}s") from exc
                return await self._longer_listen(self.silent_listen - total)
        await self.stream.write(NUDGE)
        self.nudged = True
        try:
            return await ul.read_pdu(self.stream, self.max_pdu_bytes, header_timeout=total - first)
        except ReadTimeout as exc:
            if self.silent_listen <= total:
                raise ReadTimeout(f"no answer to A-ASSOCIATE-RQ within {total:g}s") from exc
        return await self._longer_listen(self.silent_listen - total)

    async def _longer_listen(self, seconds: float) -> ul.RawPdu:
        """The peer read our RQ (it accepted TCP, did not close) and may sleep before answering.
        Only silent peers pay; each endpoint runs in its own task, so the sweep does not wait."""
        try:
            return await ul.read_pdu(self.stream, self.max_pdu_bytes, header_timeout=seconds)
        except ReadTimeout as exc:
            raise ReadTimeout(
                f"no answer to A-ASSOCIATE-RQ within {self.assoc_timeout:g}s, "
                f"nor in one longer listen to {self.silent_listen:g}s"
            ) from exc

    def _parse_ac(self, pdu: ul.RawPdu, called: str, calling: str, reply_ms: float) -> AssociationResult:
        ac = ul.decode_ac(pdu)
        order = tuple((ctx.context_id, ctx.result) for ctx in ac.contexts[:64])
        accepted: dict[str, tuple[int, str]] = {}
        refused: dict[str, int] = {}
        for ctx in ac.contexts:
            abstract = self._contexts.get(ctx.context_id)
            if abstract is None:
                continue  # a context we never proposed: ignore rather than trust
            if ctx.result == 0 and ctx.transfer_syntax:
                accepted[abstract] = (ctx.context_id, ctx.transfer_syntax)
            else:
                refused[abstract] = ctx.result
        impl_uid = peer_text(ac.implementation_class_uid or b"", 64)
        impl_ver = peer_text(ac.implementation_version_name or b"", 16)
        return AssociationResult(
            kind=AssociationKind.ACCEPTED,
            called_aet=called,
            calling_aet=calling,
            implementation_class_uid=impl_uid or None,
            implementation_version_name=impl_ver or None,
            max_pdu=ac.max_pdu,
            accepted=accepted,
            refused=refused,
            user_identity_response=ac.user_identity_response,
            user_items=ac.user_items,
            reply_ms=reply_ms,
            ac_digest=_ac_digest(pdu.body),
            context_order=order,
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

    async def send(self, command: bytes, dataset: bytes | None, context_id: int) -> None:
        """Send one DIMSE message as P-DATA-TF PDUs in a single write."""
        await self.stream.write(ul.encode_pdata(context_id, command, dataset, self._peer_max_pdu()))

    async def receive(self) -> DimseMessage:
        """Reassemble one DIMSE message from P-DATA PDVs (PS3.8 Annex E), bounded in size."""
        command = bytearray()
        data = bytearray()
        total = 0
        cmd: dimse.Command | None = None
        while True:
            pdu = await ul.read_pdu(self.stream, self.max_pdu_bytes)
            if pdu.pdu_type == ul.PDU_ABORT:
                # PS3.8 §9.3.8: the association is over. Nothing is released (no A-RELEASE-RQ
                # waiting a read timeout on a peer that already left, as Orthanc does after
                # refusing a C-FIND), and the stream is closed by its owner.
                self._released = self._peer_left = True
                source, reason = ul.decode_abort(pdu)
                raise PeerAborted(f"peer aborted the association (source {source}, reason {reason})")
            if pdu.pdu_type == ul.PDU_RELEASE_RQ:
                self._released = self._peer_left = True
                await self.stream.write(ul.encode_release_rp())
                raise ProtocolError("peer released the association in the middle of an operation")
            if pdu.pdu_type != ul.PDU_P_DATA_TF:
                raise ProtocolError(f"unexpected PDU type 0x{pdu.pdu_type:02x} during DIMSE")
            for context_id, header, fragment in ul.iter_pdvs(pdu):
                total += len(fragment)
                if total > self.max_message_bytes:
                    raise SizeLimitError(f"DIMSE message exceeds our bound of {self.max_message_bytes} bytes")
                if header & 0x01:  # command fragment (PS3.8 E.2)
                    if cmd is not None:
                        raise ProtocolError("command fragment after the last command fragment")
                    command += fragment
                    if header & 0x02:
                        cmd = dimse.decode_command(bytes(command))
                        if not cmd.has_data_set:
                            return DimseMessage(cmd, None, context_id)
                else:
                    if cmd is None:
                        raise ProtocolError("data set fragment before the command set")
                    data += fragment
                    if header & 0x02:
                        return DimseMessage(cmd, bytes(data), context_id)

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
        self, sop_class: str, identifier: bytes, *, message_id: int | None = None
    ) -> AsyncGenerator[DimseMessage, None]:
        """Yield every C-FIND response (pending and final). The caller may stop early and cancel."""
        ctx = self.context_for(sop_class)
        if ctx is None:
            raise ProtocolError("query context was not accepted")
        mid = message_id if message_id is not None else self.next_message_id()
        await self.stream.write(_find_rq(ctx[0], mid, sop_class, identifier, self._peer_max_pdu()))
        observer = self.find_observer(identifier, ctx[1]) if self.find_observer else None
        final: int | None = None
        try:
            while True:
                rsp = await self.receive()
                if observer is not None:
                    observer.add(rsp.status, rsp.dataset)
                yield rsp
                status = rsp.status
                if status is None or status not in (0xFF00, 0xFF01):
                    final = status
                    return
        finally:
            if observer is not None:
                observer.close(final)

    async def cancel(self, sop_class: str, message_id: int) -> None:
        ctx = self.context_for(sop_class)
        if ctx is None:
            return
        await self.send(dimse.cancel_rq(message_id), None, ctx[0])

    async def move(self, sop_class: str, identifier: bytes, destination: str) -> DimseMessage:
        """Send one C-MOVE and return the first response. Used by the opt-in intrusive check."""
        ctx = self.context_for(sop_class)
        if ctx is None:
            raise ProtocolError("retrieve context was not accepted")
        await self.send(dimse.move_rq(self.next_message_id(), sop_class, destination), identifier, ctx[0])
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
        if self._peer_left:
            return
        with contextlib.suppress(Exception):  # the peer may be gone already
            await self.stream.write(ul.encode_abort())


class FindObserver(Protocol):
    def add(self, status: int | None, dataset: bytes | None) -> None: ...
    def close(self, status: int | None) -> None: ...


def _ac_digest(body: bytes) -> str:
    """SHA-256 of an AC with the echoed called/calling AE fields (PS3.8 Table 9-17) blanked."""
    blanked = body[:4] + b" " * 32 + body[36:]
    return hashlib.sha256(blanked).hexdigest()[:24]


# Every target gets the same few requests (same context ids and message ids, in the same order),
# so their encodings are cached.
@functools.lru_cache(maxsize=64)
def _echo_rq(context_id: int, message_id: int, max_pdu: int) -> bytes:
    return ul.encode_pdata(context_id, dimse.echo_rq(message_id), None, max_pdu)


@functools.lru_cache(maxsize=64)
def _find_rq(context_id: int, message_id: int, sop_class: str, identifier: bytes, max_pdu: int) -> bytes:
    return ul.encode_pdata(context_id, dimse.find_rq(message_id, sop_class), identifier, max_pdu)


#: PS3.8 Table 9-11: the called AE title is bytes 11-26 and the calling AE title bytes 27-42 of
#: the A-ASSOCIATE-RQ PDU. Everything else in our RQ is the same for every target with the same
#: contexts, so it is encoded once and only the titles (and identity bytes) are patched in.
_CALLED_AET = slice(10, 26)
_CALLING_AET = slice(26, 42)


@functools.lru_cache(maxsize=32)
def _rq_template(
    contexts: tuple[ProposedContext, ...], identity_shape: tuple[int, int, bool] | None
) -> bytes:
    identity = None
    if identity_shape is not None:
        # Placeholders of the real username/passcode lengths (PS3.7 D.3.3.7.1), patched later.
        user_len, pass_len, positive = identity_shape
        identity = ul.UserIdentityRq(b"\x01" * user_len, b"\x02" * pass_len, positive)
    return ul.encode_associate_rq(
        "TEMPLATE",
        "TEMPLATE",
        [(c.abstract_syntax, c.transfer_syntaxes) for c in contexts],
        max_pdu=OUR_MAX_PDU,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        user_identity=identity,
    )


def encode_associate_rq(
    called_aet: str,
    calling_aet: str,
    contexts: tuple[ProposedContext, ...],
    user_identity: UserIdentity | None = None,
) -> bytes:
    """Our A-ASSOCIATE-RQ, naming pacsradar as the implementation (PS3.7 D.3.3.2)."""
    shape = None
    if user_identity is not None:
        shape = (
            len(user_identity.username),
            len(user_identity.passcode),
            user_identity.positive_response_requested,
        )
    pdu = bytearray(_rq_template(contexts, shape))
    pdu[_CALLED_AET] = ul.aet_field(called_aet)
    pdu[_CALLING_AET] = ul.aet_field(calling_aet)
    if user_identity is not None:
        # The User Identity sub-item is the last of the PDU: ... user, 2-byte length, passcode.
        end = len(pdu)
        n_pass, n_user = len(user_identity.passcode), len(user_identity.username)
        pdu[end - n_pass : end] = user_identity.passcode
        start_user = end - n_pass - 2 - n_user
        pdu[start_user : start_user + n_user] = user_identity.username
    return bytes(pdu)
