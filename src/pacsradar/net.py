"""Connection factory shared by all checks: rate, per-host and connect-timeout limits in one place."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import os
import socket
import ssl
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, cast

from pacsradar.config import Limits
from pacsradar.connectwait import EPOLL as _EPOLL
from pacsradar.connectwait import ConnectWaiter
from pacsradar.errors import (
    ConnectError,
    ConnectTimeout,
    PeerClosed,
    ReadTimeout,
    TlsHandshakeError,
)


def refused_message(err: int) -> str:
    """A failed connect's error, the same from the connect gate and the SYN gate."""
    return f"connect failed ({os.strerror(err)})"


def timeout_message(seconds: float) -> str:
    """A connect timeout's error (outcome.py reads it as "filtered")."""
    return f"connect did not complete within {seconds:g}s"


class RateLimiter:
    """New connections per second: a token bucket (burst = one second's worth) that goes into
    debt instead of queueing behind a lock.

    Each caller takes a token at once; past the burst the balance goes negative and the caller
    sleeps until its own token is due (``-balance / rate`` seconds: the virtual scheduling of
    the GCRA, ITU-T I.371). Waiters sleep side by side and wake on their own
    timers, so the pace holds at 20,000/s; the earlier lock let one waiter through per event-loop
    iteration, which capped a busy loop near 3,000/s (issue 14). A cancelled waiter gives its
    token back.
    """

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._burst = max(rate, 1.0)
        self._tokens = self._burst
        self._last = time.monotonic()

    async def acquire(self) -> None:
        rate = self._rate
        if rate <= 0:
            return
        now = time.monotonic()
        tokens = min(self._burst, self._tokens + (now - self._last) * rate) - 1.0
        self._tokens = tokens
        self._last = now
        if tokens >= 0:
            return
        try:
            await asyncio.sleep(-tokens / rate)
        except asyncio.CancelledError:
            self._tokens += 1.0
            raise


class _HostState:
    __slots__ = ("holders", "waiters")

    def __init__(self) -> None:
        self.holders = 1
        #: made for a host at its limit only: a sweep holds tens of thousands of hosts at once
        self.waiters: collections.deque[asyncio.Future[None]] | None = None


class HostLimiter:
    """At most ``per_host`` concurrent holders per host; entries vanish when idle.

    ``async with limiter.slot(host):`` is on the path of every endpoint of a sweep, so the
    uncontended case is a dict lookup and a counter (no semaphore, no generator); only a host
    at its limit queues futures, served first in, first out, as :class:`asyncio.Semaphore` does.
    """

    def __init__(self, per_host: int) -> None:
        self._per_host = max(1, per_host)
        self._hosts: dict[str, _HostState] = {}

    def slot(self, host: str) -> _HostSlot:
        return _HostSlot(self, host)

    async def _acquire(self, host: str) -> None:
        state = self._hosts.get(host)
        if state is None:
            self._hosts[host] = _HostState()
            return
        if state.holders < self._per_host and not state.waiters:
            state.holders += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if state.waiters is None:
            state.waiters = collections.deque()
        waiters = state.waiters
        waiters.append(fut)
        try:
            await fut  # the releaser hands its slot over: the holder count stays as it was
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._release(host)  # handed a slot, then cancelled before we could use it
            else:
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)
            raise

    def _release(self, host: str) -> None:
        state = self._hosts[host]
        while state.waiters:
            fut = state.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        state.holders -= 1
        if state.holders <= 0:
            del self._hosts[host]


class _HostSlot:
    __slots__ = ("_host", "_limiter")

    def __init__(self, limiter: HostLimiter, host: str) -> None:
        self._limiter = limiter
        self._host = host

    async def __aenter__(self) -> None:
        await self._limiter._acquire(self._host)

    async def __aexit__(self, *exc: object) -> None:
        self._limiter._release(self._host)


@dataclass
class Stream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    read_timeout: float

    async def read_exactly(self, n: int, within: float | None = None) -> bytes:
        """Read exactly ``n`` bytes within the read timeout (so a trickling peer times out).

        A timed-out read consumes nothing: ``readexactly`` takes bytes from the buffer only once
        all ``n`` are there, so the caller may wait again for the same bytes.
        """
        limit = self.read_timeout if within is None else within
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps every read in a new Task.
            async with asyncio.timeout(limit):
                return await self.reader.readexactly(n)
        except TimeoutError as exc:
            raise ReadTimeout(f"no complete reply within {limit:g}s") from exc
        except asyncio.IncompleteReadError as exc:
            raise PeerClosed(f"peer closed the connection after {len(exc.partial)} of {n} bytes") from exc
        except (ConnectionError, OSError) as exc:
            raise PeerClosed(f"connection lost ({type(exc).__name__})") from exc

    async def read_some(self, limit: int) -> bytes:
        try:
            async with asyncio.timeout(self.read_timeout):
                return await self.reader.read(limit)
        except TimeoutError as exc:
            raise ReadTimeout(f"no reply within {self.read_timeout:g}s") from exc
        except (ConnectionError, OSError) as exc:
            raise PeerClosed(f"connection lost ({type(exc).__name__})") from exc

    async def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            async with asyncio.timeout(self.read_timeout):
                await self.writer.drain()
        except TimeoutError as exc:
            raise ReadTimeout("peer did not accept our data in time") from exc
        except (ConnectionError, OSError) as exc:
            raise PeerClosed(f"connection lost while sending ({type(exc).__name__})") from exc

    async def start_tls(
        self, ctx: ssl.SSLContext, *, server_hostname: str | None = None, within: float
    ) -> None:
        """Upgrade this connection to TLS: the one TLS entry path on an open stream.

        Raises :class:`TlsHandshakeError` (``timed_out`` when it did not finish ``within``
        seconds), with the :class:`ssl.SSLError` or :class:`OSError` as its ``__cause__``.
        """
        try:
            # asyncio.timeout, not wait_for: no inner task whose SSLError could go unretrieved
            # when this one is cancelled (Ctrl-C, the deadline). Our bound fires first (a
            # TimeoutError: timed_out); asyncio's own handshake timeout, a ConnectionAbortedError
            # that reads like a reset, is only the backstop.
            async with asyncio.timeout(within):
                await self.writer.start_tls(
                    ctx, server_hostname=server_hostname, ssl_handshake_timeout=within + 1.0
                )
        except TimeoutError as exc:
            raise TlsHandshakeError("TLS handshake did not complete in time", timed_out=True) from exc
        except ssl.SSLError as exc:
            raise TlsHandshakeError(f"TLS handshake failed ({exc.reason or 'unknown'})") from exc
        except (OSError, ConnectionError) as exc:
            raise TlsHandshakeError("connection lost during the TLS handshake") from exc

    async def close(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11 a wait_for that is itself cancelled (Ctrl-C,
        # the deadline) leaves its inner wait_closed task's SSLError unretrieved ("Task
        # exception was never retrieved"); no task is created here.
        with contextlib.suppress(Exception):
            self.writer.close()
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()


class ByteStream(Protocol):
    """What the DICOM client needs of a connection: bounded reads and writes."""

    read_timeout: float

    async def read_exactly(self, n: int, within: float | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


#: Flow control for :class:`_BufferProtocol`: stop reading from the socket above this many
#: buffered bytes (as ``asyncio.StreamReader`` does at twice its limit), so a peer that floods
#: us while we are not reading costs a bounded amount of memory.
_READ_HIGH_WATER = 256 * 1024


class _BufferProtocol(asyncio.Protocol):
    """Bytes received, one waiter for "n bytes or EOF", and write flow control."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.need = 0
        self.reading_paused = False
        self.writing_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (asyncio's, or another loop's that does not subclass it).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        if self.waiter is not None and len(self.buffer) >= self.need:
            self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport: we never half-close

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def must_drain(self) -> bool:
        return self.writing_paused and not self.eof

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        if self.reading_paused and len(self.buffer) <= _READ_HIGH_WATER // 2 and self.transport:
            self.reading_paused = False
            self.transport.resume_reading()
        return data


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class PduStream:
    """A lean connection for request/response protocols (the DICOM client).

    Same contract as :class:`Stream` (every read bounded by a timeout, a short read is
    :class:`PeerClosed`), without the per-read ``asyncio.timeout`` and StreamReader layers: a
    read whose bytes are already buffered costs one slice, and a read that must wait arms one
    timer. In a 1,000-host sweep that was a fifth of the scanner's CPU (bench/README.md).
    """

    def __init__(self, protocol: _BufferProtocol, read_timeout: float) -> None:
        self._p = protocol
        self.read_timeout = read_timeout

    async def read_exactly(self, n: int, within: float | None = None) -> bytes:
        p = self._p
        if len(p.buffer) >= n:
            return p.take(n)
        limit = self.read_timeout if within is None else within
        if not p.eof:
            waiter: asyncio.Future[None] = p.loop.create_future()
            p.waiter, p.need = waiter, n
            timer = p.loop.call_later(limit, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                p.waiter = None
        if len(p.buffer) >= n:
            return p.take(n)
        if p.eof:
            got = len(p.buffer)
            reason = f" ({type(p.error).__name__})" if p.error is not None else ""
            raise PeerClosed(f"peer closed the connection after {got} of {n} bytes{reason}")
        raise ReadTimeout(f"no complete reply within {limit:g}s")

    async def write(self, data: bytes) -> None:
        p = self._p
        if p.transport is None or p.transport.is_closing():
            raise PeerClosed("connection lost while sending")
        p.transport.write(data)
        if not p.must_drain():
            return
        waiter: asyncio.Future[None] = p.loop.create_future()
        p.drain_waiter = waiter
        timer = p.loop.call_later(self.read_timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            p.drain_waiter = None
        if p.must_drain():
            raise ReadTimeout("peer did not accept our data in time")
        if p.eof:
            raise PeerClosed("connection lost while sending")

    async def close(self) -> None:
        p = self._p
        if p.transport is not None:
            p.transport.close()
        # Wait (briefly) for the socket to be closed for real, so no transport outlives us.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.shield(p.closed)


class Net:
    """Opens TCP (optionally TLS) streams under the scan's rate limit and timeouts.

    The per-host limit is applied by the engine to whole endpoints, not here: an endpoint that
    holds its session open while a later check opens a second connection would otherwise wait
    for a slot held by its own siblings on the same host (a deadlock under the deadline).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._rate = RateLimiter(limits.rate)
        self.connections_opened = 0
        #: Sockets the engine's TCP gate connected, handed to the first connect to that endpoint.
        self._adopted: dict[tuple[str, int], socket.socket] = {}
        self._waiter: ConnectWaiter | None = None

    async def probe(self, host: str, port: int) -> socket.socket:
        """One bare TCP connect (rate limit and connect timeout apply): the engine's gate.

        Nearly every endpoint of a sweep is closed or silent; this is all they cost: one
        socket, one connect, one timer, no stream, protocol or check objects. A connected
        socket is kept with :meth:`adopt` so the first check's connection reuses it (the peer
        sees one connection, as before). Raises :class:`ConnectError` (refused, unreachable)
        or :class:`ConnectTimeout` (filtered or down: could not test).
        """
        await self._rate.acquire()
        self.connections_opened += 1
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            err = sock.connect_ex((host, port))
            if err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                err = await self._writable(sock)
            if err:
                raise ConnectError(refused_message(err))
        except BaseException:
            sock.close()
            raise
        return sock

    async def _writable(self, sock: socket.socket) -> int:
        loop = asyncio.get_running_loop()
        if _EPOLL:
            waiter_set = self._waiter
            if waiter_set is None or waiter_set.loop is not loop:
                if waiter_set is not None:
                    waiter_set.close()
                waiter_set = self._waiter = ConnectWaiter(loop, self.limits.connect_timeout)
            connected = await waiter_set.wait(sock.fileno())
        else:
            connected = await self._writable_selector(loop, sock.fileno())
        if not connected:
            raise ConnectTimeout(timeout_message(self.limits.connect_timeout))
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    async def _writable_selector(self, loop: asyncio.AbstractEventLoop, fd: int) -> bool:
        """Without epoll: asyncio's add_writer and a timer for this one connect."""
        waiter: asyncio.Future[bool] = loop.create_future()
        loop.add_writer(fd, _settle, waiter, True)
        timer = loop.call_later(self.limits.connect_timeout, _settle, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            loop.remove_writer(fd)

    async def token(self) -> None:
        """Wait for one connection's token of the scan's ``--rate`` (the SYN gate's probes)."""
        await self._rate.acquire()

    def close(self) -> None:
        """Release the connect waiter's epoll set (the engine calls it when a run ends)."""
        if self._waiter is not None:
            self._waiter.close()
            self._waiter = None

    def adopt(self, host: str, port: int, sock: socket.socket) -> None:
        """Keep a gate-connected socket for the next connection to ``host:port``."""
        old = self._adopted.pop((host, port), None)
        if old is not None:
            old.close()
        self._adopted[(host, port)] = sock

    def discard(self, host: str, port: int) -> None:
        """Close an adopted socket nobody used (the auditor did not connect through us)."""
        sock = self._adopted.pop((host, port), None)
        if sock is not None:
            sock.close()

    @contextlib.asynccontextmanager
    async def connect(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> AsyncIterator[Stream]:
        sock = self._adopted.pop((host, port), None)
        if sock is None:
            await self._rate.acquire()
            self.connections_opened += 1
        try:
            async with asyncio.timeout(self.limits.connect_timeout):
                if sock is not None:
                    reader, writer = await asyncio.open_connection(
                        sock=sock,
                        ssl=tls,
                        server_hostname=(server_hostname or host) if tls else None,
                        limit=64 * 1024,
                    )
                else:
                    reader, writer = await asyncio.open_connection(
                        host,
                        port,
                        ssl=tls,
                        server_hostname=server_hostname if tls else None,
                        limit=64 * 1024,
                    )
        except TimeoutError as exc:
            raise ConnectTimeout(timeout_message(self.limits.connect_timeout)) from exc
        except ssl.SSLError as exc:
            raise TlsHandshakeError(f"TLS handshake failed ({exc.reason or 'unknown'})") from exc
        except OSError as exc:
            raise ConnectError(f"connect failed ({exc.strerror or type(exc).__name__})") from exc
        stream = Stream(reader, writer, self.limits.read_timeout)
        try:
            yield stream
        finally:
            await stream.close()

    @contextlib.asynccontextmanager
    async def connect_pdu(
        self, host: str, port: int, *, tls: ssl.SSLContext | None = None
    ) -> AsyncIterator[PduStream]:
        """Like :meth:`connect`, for the DICOM client: a :class:`PduStream`."""
        sock = self._adopted.pop((host, port), None)
        if sock is None:
            await self._rate.acquire()
            self.connections_opened += 1
        loop = asyncio.get_running_loop()
        protocol = _BufferProtocol(loop)
        try:
            async with asyncio.timeout(self.limits.connect_timeout):
                if sock is not None:
                    await loop.create_connection(
                        lambda: protocol, sock=sock, ssl=tls, server_hostname=host if tls else None
                    )
                else:
                    await loop.create_connection(lambda: protocol, host, port, ssl=tls)
        except TimeoutError as exc:
            raise ConnectTimeout(timeout_message(self.limits.connect_timeout)) from exc
        except ssl.SSLError as exc:
            raise TlsHandshakeError(f"TLS handshake failed ({exc.reason or 'unknown'})") from exc
        except OSError as exc:
            raise ConnectError(f"connect failed ({exc.strerror or type(exc).__name__})") from exc
        stream = PduStream(protocol, self.limits.read_timeout)
        try:
            yield stream
        finally:
            await stream.close()


def _settle(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


def insecure_tls_context() -> ssl.SSLContext:
    """For discovery: accept any certificate (it is reported by the TLS checks, not trusted)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Legacy PACS still speak TLS 1.0: discovery must reach them to report them. Python warns
    # that TLSv1 is deprecated, which is the point of reporting it, so the warning is muted here.
    with contextlib.suppress(ValueError, ssl.SSLError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx
