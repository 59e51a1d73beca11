"""The HTTP stack's network layer: httpcore connections opened through :class:`pacsradar.net.Net`.

TLS goes through :meth:`pacsradar.net.Stream.start_tls`, the one TLS entry path, whose typed
:class:`~pacsradar.errors.TlsHandshakeError` passes through httpcore and httpx untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

import httpcore

from pacsradar.config import Limits
from pacsradar.errors import (
    ConnectError,
    ConnectTimeout,
)
from pacsradar.net import Net, Stream

#: Logger names of the HTTP stack. Their DEBUG/INFO records quote URLs (which may carry study
#: UIDs) and response headers (which may carry anything), so nothing below WARNING leaves them.
_TRANSPORT_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


class _DropBelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_FILTER = _DropBelowWarning()


def quiet_transport_loggers() -> None:
    """HACKING.md rule 1 (no PHI in logs at any level) applied to httpx/httpcore. Idempotent."""
    for name in _TRANSPORT_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# --------------------------------------------------------------------------------------------
# httpcore network backend over pacsradar.net.Net


class _NetStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: Stream, stack: contextlib.AsyncExitStack, limits: Limits) -> None:
        self._stream = stream
        self._stack = stack
        self._limits = limits
        self._head = b""  # first bytes of the reply, to tell a non-HTTP banner early

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            data = await asyncio.wait_for(
                self._stream.reader.read(max_bytes), timeout or self._limits.read_timeout
            )
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("read timed out") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            raise httpcore.ReadError("connection lost while reading") from exc
        if len(self._head) < 5 and data:
            # h11 only parses a status line once the whole head arrived; a banner such as
            # "SSH-2.0-..." would otherwise sit there until the read timeout.
            self._head = (self._head + data).lstrip(b"\r\n")[:5]
            if self._head and not b"HTTP/".startswith(self._head[:5]):
                raise httpcore.RemoteProtocolError("illegal status line (not HTTP)")
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        try:
            self._stream.writer.write(buffer)
            await asyncio.wait_for(self._stream.writer.drain(), timeout or self._limits.read_timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("write timed out") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            raise httpcore.WriteError("connection lost while writing") from exc

    async def aclose(self) -> None:
        await self._stack.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        # Raises pacsradar's TlsHandshakeError: httpx maps only httpcore's exceptions, so the
        # typed error reaches WebClient as it is (no message text to match).
        await self._stream.start_tls(
            ssl_context, server_hostname=server_hostname, within=timeout or self._limits.connect_timeout
        )
        return self

    def get_extra_info(self, info: str) -> Any:
        writer = self._stream.writer
        if info == "ssl_object":
            return writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return writer.get_extra_info("sockname")
        if info == "server_addr":
            return writer.get_extra_info("peername")
        if info == "socket":
            return writer.get_extra_info("socket")
        if info == "is_readable":
            return self._stream.reader.at_eof()
        return None


class NetBackend(httpcore.AsyncNetworkBackend):
    """Opens httpcore connections through :class:`Net` (rate, per-host and connect limits)."""

    def __init__(self, net: Net) -> None:
        self._net = net

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stack = contextlib.AsyncExitStack()
        try:
            stream = await stack.enter_async_context(self._net.connect(host, port))
        except ConnectTimeout as exc:
            await stack.aclose()
            raise httpcore.ConnectTimeout("connect timed out") from exc
        except ConnectError as exc:
            await stack.aclose()
            raise httpcore.ConnectError("connect failed") from exc
        except BaseException:
            await stack.aclose()
            raise
        return _NetStream(stream, stack, self._net.limits)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not scanned")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
