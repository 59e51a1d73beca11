"""Hostile and broken "DICOM" servers on 127.0.0.0/8 for robustness tests of the scanner.

Each is an asyncio server (``async with Silent() as srv: srv.port``) that can also run on a
background loop via :func:`run_in_thread`, because the scanner under test may own its loop.
Every server counts ``connections`` so a test can prove the scanner really reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType

from pydicom.dataset import Dataset
from pydicom.uid import UID

from lab.aiothread import LoopThread
from lab.dul import (
    ABORT,
    ASSOCIATE_RQ,
    C_CANCEL_RQ_CMD,
    C_ECHO_RQ_CMD,
    C_FIND_RQ_CMD,
    P_DATA,
    RELEASE_RQ,
    MessageReader,
    abort_pdu,
    associate_ac,
    corrupt_item_lengths,
    decode_dataset,
    echo_rsp,
    find_rsp,
    read_pdu,
    release_rp_pdu,
)
from lab.ports import LOOPBACK, closed_port

__all__ = [
    "HOSTILE_KINDS",
    "AbortMidway",
    "EndlessPending",
    "HostileServer",
    "HttpOnDicomPort",
    "HugePdu",
    "MalformedAc",
    "Silent",
    "SlowFront",
    "ThreadedServer",
    "Trickle",
    "closed_port",
    "run_in_thread",
]

_HTTP_400 = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
    b"Connection: close\r\n\r\nBad Request"
)


class HostileServer:
    """Base: accept on ``host:port`` (port 0 = any free one), run :meth:`handle` per client."""

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self.host = host
        self.port = port
        self.connections = 0
        self.errors = 0  # handler endings by exception (client hung up, garbage input...)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.host, self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> HostileServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self.handle(reader, writer)
        except Exception:
            # A client hanging up or sending garbage is the expected outcome here.
            self.errors += 1
        except asyncio.CancelledError:
            # stop() cancels us; finishing normally keeps asyncio.streams from logging it.
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    @staticmethod
    async def drain_until_eof(reader: asyncio.StreamReader) -> None:
        """Stall: read and discard whatever the client sends until it hangs up."""
        while await reader.read(65536):
            pass


class Silent(HostileServer):
    """Accepts TCP and never sends a byte (PS3.8 §9.1.1: the ARTIM timer is the client's job)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.drain_until_eof(reader)


class HugePdu(HostileServer):
    """On any data, answers an A-ASSOCIATE-AC header announcing 0xFFFFFFF0 bytes, then stalls."""

    announced = 0xFFFFFFF0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.read(1):
            writer.write(bytes([0x02, 0x00]) + self.announced.to_bytes(4, "big"))
            await writer.drain()
            await self.drain_until_eof(reader)


class Trickle(HostileServer):
    """Answers a valid A-ASSOCIATE-AC, one byte every ``interval`` seconds (slowloris-style)."""

    def __init__(self, host: str = LOOPBACK, port: int = 0, interval: float = 1.0) -> None:
        super().__init__(host, port)
        self.interval = interval

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pdu_type, rq = await read_pdu(reader)
        if pdu_type != ASSOCIATE_RQ:
            return
        ac, _ = associate_ac(rq)
        for i in range(len(ac)):
            writer.write(ac[i : i + 1])
            await writer.drain()
            await asyncio.sleep(self.interval)
        await self.drain_until_eof(reader)


class MalformedAc(HostileServer):
    """Answers an A-ASSOCIATE-AC whose Application Context item length is corrupt."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pdu_type, rq = await read_pdu(reader)
        if pdu_type != ASSOCIATE_RQ:
            return
        ac, _ = associate_ac(rq)
        writer.write(corrupt_item_lengths(ac))
        await writer.drain()
        await self.drain_until_eof(reader)


class AbortMidway(HostileServer):
    """Accepts the association, then answers the first P-DATA-TF with an A-ABORT."""

    def __init__(self, host: str = LOOPBACK, port: int = 0, source: int = 0) -> None:
        super().__init__(host, port)
        self.source = source  # PS3.8 §9.3.8: 0 service-user, 2 service-provider

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pdu_type, rq = await read_pdu(reader)
        if pdu_type != ASSOCIATE_RQ:
            return
        writer.write(associate_ac(rq)[0])
        await writer.drain()
        while True:
            pdu_type, _ = await read_pdu(reader)
            if pdu_type == P_DATA:
                writer.write(abort_pdu(self.source))
                await writer.drain()
                return
            if pdu_type in (RELEASE_RQ, ABORT):
                return


class HttpOnDicomPort(HostileServer):
    """A web server where DICOM was expected: any bytes get ``HTTP/1.1 400 Bad Request``."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.read(65536):
            writer.write(_HTTP_400)
            await writer.drain()


class EndlessPending(HostileServer):
    """A minimal valid SCP whose C-FIND never ends: unlimited Pending (0xFF00) responses, each
    with a tiny identifier, and C-CANCEL-RQ ignored (PS3.4 §C.4.1.3.1 says stop; it does not).

    Answers C-ECHO and A-RELEASE-RQ properly. Counts ``pending_sent`` and ``cancels_ignored``.
    """

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        super().__init__(host, port)
        self.pending_sent = 0
        self.cancels_ignored = 0

    @staticmethod
    def identifier(request_level: str) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = request_level or "STUDY"
        ds.PatientID = "HOSTILE-PENDING"
        return ds

    async def _flood(self, writer: asyncio.StreamWriter, pdus: bytes) -> None:
        while True:
            writer.write(pdus)
            await writer.drain()  # back-pressure: only as fast as the client reads
            self.pending_sent += 1
            await asyncio.sleep(0)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pdu_type, rq = await read_pdu(reader)
        if pdu_type != ASSOCIATE_RQ:
            return
        ac, syntaxes = associate_ac(rq)
        writer.write(ac)
        await writer.drain()
        messages = MessageReader()
        floods: list[asyncio.Task[None]] = []
        try:
            while True:
                pdu_type, pdu = await read_pdu(reader)
                if pdu_type == RELEASE_RQ:
                    writer.write(release_rp_pdu())
                    await writer.drain()
                    return
                if pdu_type != P_DATA:
                    return
                for context_id, command, raw in messages.feed(pdu):
                    field = int(command.CommandField)
                    if field == C_ECHO_RQ_CMD:
                        writer.write(echo_rsp(context_id, command))
                    elif field == C_CANCEL_RQ_CMD:
                        self.cancels_ignored += 1
                    elif field == C_FIND_RQ_CMD:
                        level = _level(raw, syntaxes[context_id])
                        pdus = find_rsp(
                            context_id, command, 0xFF00, self.identifier(level),
                            syntaxes[context_id],
                        )  # fmt: skip
                        floods.append(asyncio.create_task(self._flood(writer, pdus)))
        finally:
            for task in floods:
                task.cancel()
            await asyncio.gather(*floods, return_exceptions=True)


def _level(raw: bytes, transfer_syntax: UID) -> str:
    try:
        return str(decode_dataset(raw, transfer_syntax).get("QueryRetrieveLevel", "STUDY"))
    except Exception:  # a garbled identifier still gets the flood
        return "STUDY"


#: name -> factory, for parametrised robustness tests.
HOSTILE_KINDS: dict[str, type[HostileServer]] = {
    "silent": Silent,
    "huge_pdu": HugePdu,
    "trickle": Trickle,
    "endless_pending": EndlessPending,
    "malformed_ac": MalformedAc,
    "abort_midway": AbortMidway,
    "http_on_dicom_port": HttpOnDicomPort,
}


class SlowFront(HostileServer):
    """A real DICOM server behind a relay that holds back its first answer by ``delay`` seconds:
    a slow but honest PACS (busy, or doing reverse DNS before it answers an A-ASSOCIATE-RQ)."""

    def __init__(self, backend: tuple[str, int], delay: float, host: str = LOOPBACK, port: int = 0) -> None:
        super().__init__(host, port)
        self.backend = backend
        self.delay = delay
        self.client_bytes: list[bytes] = []  # what each client sent first, for the test to inspect

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend_r, backend_w = await asyncio.open_connection(*self.backend)
        try:
            await asyncio.gather(self._upstream(reader, backend_w), self._downstream(backend_r, writer))
        finally:
            backend_w.close()

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()

    async def _downstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while data := await reader.read(65536):
            if first:
                await asyncio.sleep(self.delay)
                first = False
            writer.write(data)
            await writer.drain()
        writer.close()


@dataclass
class ThreadedServer:
    """A hostile server running on its own background loop."""

    server: HostileServer
    loop: LoopThread

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        if not self.loop.loop.is_closed():
            self.loop.run(self.server.stop())
            self.loop.close()

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_in_thread(server: HostileServer) -> ThreadedServer:
    """Start ``server`` on a fresh background loop; ``.host``/``.port``/``.stop()``."""
    loop = LoopThread(f"hostile-{type(server).__name__}")
    try:
        loop.run(server.start())
    except BaseException:
        loop.close()
        raise
    return ThreadedServer(server, loop)
