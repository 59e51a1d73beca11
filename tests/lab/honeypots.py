"""Emulations of public DICOM honeypots, written from reading their source (issue 15 ground truth).

Each reproduces what the honeypot puts on the wire, not its logging:

* :class:`Dicompot`: github nsmfoo/dicompot (T-Pot's DICOM honeypot, Go, on grailbio's
  go-netdicom). The A-ASSOCIATE-AC carries one user information sub-item, Maximum Length
  4,194,304 (``DefaultMaxPDUSize = 4 << 20``), and no Implementation Class UID; every proposed
  context is accepted with the first transfer syntax offered (contextmanager.go). C-FIND answers
  one record per file, whatever the level, with every requested key (empty when the file lacks
  it), so QueryRetrieveLevel comes back empty (go-dicom ``Query`` matches it without an element).
  C-MOVE with no match answers Success. ``enforce=True`` is ``-enforce yes``: a wrong called AE
  gets, after ``time.Sleep(5 * time.Second)``, A-ASSOCIATE-RJ result 1 source 2 reason 2
  (statemachine.go actionAe6). Its default AE title is ``radiant``.
* :class:`DicomHawk`: github gtheodoridis/DICOMHawk (pynetdicom). Any AE title; C-FIND matches
  on PatientName alone (all files when the identifier has none) and yields each whole fake file,
  512x512 16-bit pixel data included; C-MOVE yields ``(1, ds)`` as the destination, which
  pynetdicom answers 0xC513. Its Flask log viewer (port 5000) is not emulated here.
* :class:`FkieDicom`: the DICOM server of github fkie-cad/honeypots (``dicom_server.py``,
  pynetdicom). AE title ``PACS``; every storage, Q/R, relevant-patient and verification context
  with every transfer syntax; a generic handler returning 0 for every intervention event, so
  C-FIND fails with 0xC311; C-MOVE yields ``(None, None)`` (0xA801) before any lookup; a
  username/passcode identity is refused unless it is the configured login.
* accept-everything (:class:`HoneypotProcess`): a pynetdicom SCP with ``_config.UNRESTRICTED_STORAGE_SERVICE``
  (accepts any abstract syntax, any AE, any identity) answering every C-FIND with the same fake
  records. The flag is process-wide, so this one runs in a subprocess of its own
  (:class:`HoneypotProcess`, ``python -m lab.honeypots accept-everything HOST PORT``): the real
  pynetdicom peers of the same test process keep rejecting unknown syntaxes.

Synthetic data only; every name carries the CANARY prefix (tests/lab/__init__.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid

from lab import CANARY
from lab.dul import (
    ABORT,
    ASSOCIATE_RQ,
    C_ECHO_RQ_CMD,
    C_FIND_RQ_CMD,
    P_DATA,
    RELEASE_RQ,
    MessageReader,
    decode_dataset,
    echo_rsp,
    find_rsp,
    read_pdu,
    release_rp_pdu,
)
from lab.hostile import HostileServer
from lab.ports import LOOPBACK, PeerStartError, stop_process

DICOMPOT_MAX_PDU = 4 << 20
DICOMPOT_AET = "radiant"
DICOMPOT_REJECT_DELAY = 5.0
C_MOVE_RQ_CMD = 0x0021
CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")

__all__ = [
    "DicomHawk",
    "Dicompot",
    "FkieDicom",
    "HoneypotProcess",
    "fake_files",
]


def fake_files(count: int = 10, *, pixels: bool = False) -> list[Dataset]:
    """Fake CT "files" as the honeypots make them (DICOMHawk's create_fake_dicom_files shape)."""
    first = ["Frederik", "Sofie", "Lukas", "Emma", "William"]
    last = ["Jensen", "Nielsen", "Hansen", "Pedersen", "Larsen"]
    files = []
    for i in range(count):
        ds = Dataset()
        ds.PatientName = f"{CANARY}{last[i % 5]}^{first[(i * 3) % 5]}"
        ds.PatientID = f"{CANARY}{i + 1}"
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.Modality = "CT"
        ds.StudyDate = "20240601"
        ds.StudyTime = "101500"
        ds.Rows = 512
        ds.Columns = 512
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        if pixels:
            ds.PixelData = b"\x00" * (512 * 512 * 2)
        files.append(ds)
    return files


# -- dicompot ----------------------------------------------------------------------------------


def _dicompot_ac(rq_pdu: bytes) -> tuple[bytes, dict[int, UID]]:
    """The AC dicompot's onAssociateRequest builds: contexts accepted, Maximum Length only."""
    from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
    from pynetdicom.presentation import PresentationContext

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
        cx.result = 0x00
        results.append(cx)
        accepted[int(proposed.context_id)] = UID(proposed.transfer_syntax[0])
    ac.presentation_context_definition_results_list = results
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = DICOMPOT_MAX_PDU
    ac.user_information = [max_length]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(ac)
    return pdu.encode(), accepted


def _called_aet(rq_pdu: bytes) -> str:
    # PS3.8 Table 9-11: called AE title at bytes 10-26 of the PDU (after the 6-byte header).
    return rq_pdu[10:26].decode("ascii", "replace").strip()


def _rj(result: int, source: int, reason: int) -> bytes:
    return bytes([0x03, 0, 0, 0, 0, 4, 0, result, source, reason])


class Dicompot(HostileServer):
    """dicompot on loopback; ``enforce`` turns on its called-AE check (``-enforce yes``)."""

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        enforce: bool = False,
        files: list[Dataset] | None = None,
        reject_delay: float = DICOMPOT_REJECT_DELAY,
    ) -> None:
        super().__init__(host, port)
        self.enforce = enforce
        self.files = files if files is not None else fake_files(6)
        self.reject_delay = reject_delay
        self.finds = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pdu_type, rq = await read_pdu(reader)
        if pdu_type != ASSOCIATE_RQ:
            return
        if self.enforce and _called_aet(rq) != DICOMPOT_AET:
            await asyncio.sleep(self.reject_delay)  # "Sleep to prevent overload" (actionAe6)
            writer.write(_rj(1, 2, 2))
            await writer.drain()
            return
        ac, accepted = _dicompot_ac(rq)
        writer.write(ac)
        await writer.drain()
        messages = MessageReader()
        while True:
            pdu_type, pdu = await read_pdu(reader, DICOMPOT_MAX_PDU + 6)
            if pdu_type == RELEASE_RQ:
                writer.write(release_rp_pdu())
                await writer.drain()
                return
            if pdu_type == ABORT:
                return
            if pdu_type != P_DATA:
                continue
            for context_id, command, raw in messages.feed(pdu):
                ts = accepted.get(context_id, UID("1.2.840.10008.1.2"))
                writer.write(self._answer(context_id, command, raw, ts))
            await writer.drain()

    def _answer(self, context_id: int, command: Dataset, raw: bytes, ts: UID) -> bytes:
        field = command.CommandField
        if field == C_ECHO_RQ_CMD:
            return echo_rsp(context_id, command)
        if field == C_FIND_RQ_CMD:
            self.finds += 1
            out = bytearray()
            for record in self._matches(decode_dataset(raw, ts)):
                out += find_rsp(context_id, command, 0xFF00, record, ts)
            return bytes(out + find_rsp(context_id, command, 0x0000))
        if field == C_MOVE_RQ_CMD:
            return _move_rsp(context_id, command, 0x0000)  # no match: Success, no sub-operations
        return b""

    def _matches(self, query: Dataset) -> Iterator[Dataset]:
        """go-dicom Query per filter, per file: QueryRetrieveLevel always matches, absent."""
        for ds in self.files:
            record = Dataset()
            matched = True
            for elem in query:
                if elem.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet"):
                    record.add_new(elem.tag, elem.VR, None)  # dicompot's NewElement(filter.Tag)
                    continue
                want = str(elem.value or "")
                have = ds.get(elem.keyword) if elem.keyword else None
                if want and (have is None or not fnmatch.fnmatchcase(str(have), want)):
                    matched = False
                    break
                if have is not None and elem.keyword:
                    setattr(record, elem.keyword, have)
                else:
                    record.add_new(elem.tag, elem.VR, None)
            if matched:
                yield record


def _move_rsp(context_id: int, request: Dataset, status: int) -> bytes:
    from pynetdicom.dimse_messages import C_MOVE_RSP
    from pynetdicom.dimse_primitives import C_MOVE

    from lab.dul import _pdus

    primitive = C_MOVE()
    primitive.MessageIDBeingRespondedTo = request.MessageID
    primitive.AffectedSOPClassUID = request.AffectedSOPClassUID
    primitive.Status = status
    primitive.NumberOfCompletedSuboperations = 0
    primitive.NumberOfFailedSuboperations = 0
    primitive.NumberOfWarningSuboperations = 0
    msg = C_MOVE_RSP()
    msg.primitive_to_message(primitive)
    return _pdus(msg, context_id)


# -- pynetdicom-based honeypots ----------------------------------------------------------------


class PynetdicomHoneypot:
    """Start/stop a pynetdicom AE server on loopback, quietly (pynetdicom logs PHI at INFO)."""

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._server: Any = None
        self._ae: Any = None
        self.port = 0

    def make(self) -> tuple[Any, list[Any]]:
        raise NotImplementedError

    def start(self) -> int:
        from pacsradar.lab.pacs import silence_pynetdicom

        silence_pynetdicom()
        ae, handlers = self.make()
        ae.acse_timeout = ae.dimse_timeout = 10
        ae.network_timeout = 30
        # Port 0: the kernel picks and binds in one step, and server_address tells which.
        self._server = ae.start_server((self.host, self._requested_port), block=False, evt_handlers=handlers)
        self._ae = ae
        self.port = int(self._server.server_address[1])
        return self.port

    def stop(self, timeout: float = 10.0) -> None:
        """As ExposedPacs.stop: close the listening socket, then wait for open associations."""
        ae, self._ae, self._server = self._ae, None, None
        if ae is None:
            return
        ae.shutdown()
        deadline = time.monotonic() + timeout
        for assoc in list(ae.active_associations):
            assoc.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def hawk_handlers(find: Callable[[Any], Any], move: Callable[[Any], Any]) -> list[Any]:
    """DICOMHawk's event handlers (the version :class:`DicomHawk` follows and the rewrite
    :mod:`lab.hawk_personas` follows alike): its own C-FIND and C-MOVE, Success to every
    C-ECHO and C-STORE."""
    from pynetdicom import evt

    return [
        (evt.EVT_C_FIND, find),
        (evt.EVT_C_ECHO, lambda event: 0x0000),
        (evt.EVT_C_STORE, lambda event: 0x0000),
        (evt.EVT_C_MOVE, move),
    ]


class DicomHawk(PynetdicomHoneypot):
    def __init__(self, host: str = LOOPBACK, port: int = 0, files: list[Dataset] | None = None) -> None:
        super().__init__(host, port)
        self.files = files if files is not None else fake_files(10, pixels=True)

    def make(self) -> tuple[Any, list[Any]]:
        from pynetdicom import (
            AE,
            QueryRetrievePresentationContexts,
            StoragePresentationContexts,
            VerificationPresentationContexts,
        )

        ae = AE()
        # dicomhawk.py: Patient Root FIND/GET, CT, MR, Verification, then every storage,
        # verification and Q/R context pynetdicom lists.
        for uid in ("1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.1.3", CT_IMAGE_STORAGE):
            ae.add_supported_context(uid)
        for cx in (
            StoragePresentationContexts + VerificationPresentationContexts + QueryRetrievePresentationContexts
        ):
            ae.add_supported_context(cx.abstract_syntax)
        return ae, hawk_handlers(self._find, self._move)

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset]]:
        term = None
        for elem in event.identifier:
            if elem.VR == "PN" and elem.keyword == "PatientName":
                term = str(elem.value)
                break
        for ds in self.files:
            if term is None or ds.PatientName == term or term == "*":
                yield 0xFF00, ds

    def _move(self, event: Any) -> Iterator[Any]:
        ds = Dataset()
        ds.SOPInstanceUID = generate_uid()
        yield 1, ds  # not an (address, port): pynetdicom then fails the sub-operation count


class FkieDicom(PynetdicomHoneypot):
    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        login: tuple[str, str] = ("admin", "admin"),
        *,
        every_transfer_syntax: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.login = login
        # The honeypot offers ALL_TRANSFER_SYNTAXES; pynetdicom then copies 200 contexts x 45
        # syntaxes per association (~0.3 s, racing the scanner's 0.5 s nudge on a loaded box).
        # Our probes propose Implicit VR Little Endian only, so pynetdicom's default syntaxes
        # give the same answers to them, in milliseconds.
        self.every_transfer_syntax = every_transfer_syntax

    @property
    def transfer_syntaxes(self) -> list[str] | None:
        from pynetdicom import ALL_TRANSFER_SYNTAXES

        return list(ALL_TRANSFER_SYNTAXES) if self.every_transfer_syntax else None

    def make(self) -> tuple[Any, list[Any]]:
        from pynetdicom import (
            AE,
            AllStoragePresentationContexts,
            QueryRetrievePresentationContexts,
            RelevantPatientInformationPresentationContexts,
            VerificationPresentationContexts,
            evt,
        )

        ae = AE(ae_title="PACS")
        for group in (
            AllStoragePresentationContexts,
            RelevantPatientInformationPresentationContexts,
            QueryRetrievePresentationContexts,
            VerificationPresentationContexts,
        ):
            for cx in group:
                ae.add_supported_context(cx.abstract_syntax, self.transfer_syntaxes)
        storage = {cx.abstract_syntax for cx in AllStoragePresentationContexts}
        for cx in ae.supported_contexts:
            cx.scp_role = True
            cx.scu_role = cx.abstract_syntax in storage
        special = {
            evt.EVT_USER_ID.name: self._login,
            evt.EVT_C_MOVE.name: self._move,
            evt.EVT_C_GET.name: self._get,
        }
        boring = {"EVT_ASYNC_OPS", "EVT_SOP_EXTENDED", "EVT_SOP_COMMON"}
        handlers = [
            (event, special.get(event.name, self._generic))
            for event in evt._INTERVENTION_EVENTS
            if event.name not in boring
        ]
        return ae, handlers

    @staticmethod
    def _generic(event: Any, *_: Any) -> int:
        return 0x0000  # for EVT_C_FIND too: not a generator, so pynetdicom answers 0xC311

    def _login(self, event: Any) -> tuple[bool, bytes | None]:
        if event.user_id_type == 2:
            given = (
                event.primary_field.decode(errors="replace"),
                event.secondary_field.decode(errors="replace"),
            )
            return given == self.login, None
        return event.user_id_type == 1, None

    @staticmethod
    def _move(event: Any) -> Iterator[Any]:
        if not event.identifier or "QueryRetrieveLevel" not in event.identifier:
            yield 0xC000, None
            return
        yield None, None  # 0xA801 before any lookup

    @staticmethod
    def _get(event: Any) -> Iterator[Any]:
        yield 0xC000, None  # the honeypot serves a demo file here; the tests never C-GET


class _AcceptEverythingInProcess(PynetdicomHoneypot):
    """Runs only inside the subprocess started by :class:`HoneypotProcess`."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.files = fake_files(5)

    def make(self) -> tuple[Any, list[Any]]:
        from pynetdicom import (
            AE,
            QueryRetrievePresentationContexts,
            VerificationPresentationContexts,
            _config,
            evt,
        )

        _config.UNRESTRICTED_STORAGE_SERVICE = True  # accept any abstract syntax at all
        ae = AE(ae_title="PACS")
        for cx in QueryRetrievePresentationContexts + VerificationPresentationContexts:
            ae.add_supported_context(cx.abstract_syntax)
        handlers = [
            (evt.EVT_C_FIND, self._find),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
            (evt.EVT_C_STORE, lambda event: 0x0000),
            (evt.EVT_USER_ID, lambda event: (True, None)),
        ]
        return ae, handlers

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset]]:
        for ds in self.files:  # whatever was asked
            rsp = Dataset()
            rsp.QueryRetrieveLevel = event.identifier.get("QueryRetrieveLevel", "STUDY")
            rsp.PatientName, rsp.PatientID = ds.PatientName, ds.PatientID
            rsp.StudyInstanceUID, rsp.StudyDate = ds.StudyInstanceUID, ds.StudyDate
            yield 0xFF00, rsp


class HoneypotProcess:
    """A pynetdicom honeypot in a subprocess of its own: ``kind`` is "accept-everything" (its
    flag is process-wide) or "fkie" (it negotiates slowly, ~0.3 s per association: in the test
    process it would compete with the scanner for the GIL)."""

    def __init__(self, kind: str, host: str = LOOPBACK) -> None:
        if kind not in _IN_SUBPROCESS:
            raise ValueError(f"unknown honeypot kind {kind!r}")
        self.kind = kind
        self.host = host
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HoneypotProcess:
        tests = Path(__file__).resolve().parents[1]
        # The child binds port 0 and reports the bound port: no port is chosen and freed first.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "lab.honeypots", self.kind, self.host, "0"],
            cwd=tests,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        # The child warms up with one association to itself, then says "ready PORT": a deployed
        # honeypot paid pynetdicom's first-association cost (~0.7 s here) long ago.
        assert self._proc.stdout is not None
        word, _, port = self._proc.stdout.readline().decode(errors="replace").partition(" ")
        if word != "ready" or not port.strip().isdigit():
            stop_process(self._proc)
            raise PeerStartError(f"{self.kind} honeypot did not warm up")
        self.port = int(port)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            stop_process(self._proc)
            if self._proc.stdout is not None:
                self._proc.stdout.close()


_IN_SUBPROCESS: dict[str, type[PynetdicomHoneypot]] = {
    "accept-everything": _AcceptEverythingInProcess,
    "fkie": FkieDicom,
}


def _serve_until_stdin_closes(kind: str, host: str, port: int) -> None:
    from pynetdicom import AE

    server = _IN_SUBPROCESS[kind](host, port)
    port = server.start()
    warm = AE()
    warm.add_requested_context("1.2.840.10008.1.1")
    assoc = warm.associate(host, port)
    if assoc.is_established:
        assoc.release()
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    done = threading.Event()

    def watch() -> None:
        sys.stdin.buffer.read()  # EOF when the parent closes the pipe, or dies
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    done.wait()
    server.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in _IN_SUBPROCESS:
        _serve_until_stdin_closes(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"usage: python -m lab.honeypots {{{','.join(_IN_SUBPROCESS)}}} HOST PORT")
