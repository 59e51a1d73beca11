"""Connection factory shared by all checks: rate, per-host and connect-timeout limits in one place."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pacsradar.config import Limits
from pacsradar.errors import (
    ConnectError,
    ConnectTimeout,
    PeerClosed,
    ReadTimeout,
    TlsHandshakeError,
)


class RateLimiter:
    """Token bucket for new connections per second (burst = one second's worth)."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = max(rate, 1.0)
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self._rate <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(max(self._rate, 1.0), self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)


class HostLimiter:
    """At most ``per_host`` concurrent holders per host; entries vanish when idle."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._sems: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        sem, users = self._sems.get(host, (asyncio.Semaphore(self._per_host), 0))
        self._sems[host] = (sem, users + 1)
        try:
            async with sem:
                yield
        finally:
            sem, users = self._sems[host]
            if users <= 1:
                del self._sems[host]
            else:
                self._sems[host] = (sem, users - 1)


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

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


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

    @contextlib.asynccontextmanager
    async def connect(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> AsyncIterator[Stream]:
        await self._rate.acquire()
        self.connections_opened += 1
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=tls,
                    server_hostname=server_hostname if tls else None,
                    limit=64 * 1024,
                ),
                self.limits.connect_timeout,
            )
        except TimeoutError as exc:
            raise ConnectTimeout(f"connect did not complete within {self.limits.connect_timeout:g}s") from exc
        except ssl.SSLError as exc:
            raise TlsHandshakeError(f"TLS handshake failed ({exc.reason or 'unknown'})") from exc
        except OSError as exc:
            raise ConnectError(f"connect failed ({exc.strerror or type(exc).__name__})") from exc
        stream = Stream(reader, writer, self.limits.read_timeout)
        try:
            yield stream
        finally:
            await stream.close()


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
