"""The one TLS entry path: `Stream.start_tls` raises the typed `TlsHandshakeError` (127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator

import pytest

from pacsradar.config import Limits
from pacsradar.errors import ConnectError, TlsHandshakeError
from pacsradar.net import Net, insecure_tls_context
from pacsradar.web.client import WebClient

LIMITS = Limits(connect_timeout=1.0, read_timeout=1.0)


@contextlib.asynccontextmanager
async def server(reply: bytes | None) -> AsyncIterator[int]:
    """A TCP peer that answers any bytes with ``reply`` (or stays silent when it is None)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.read(1)
            if reply is None:
                while await reader.read(1024):  # silent: read and never answer, until EOF
                    pass
            else:
                writer.write(reply)
                await writer.drain()
                await reader.read(1024)
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


async def test_a_plain_text_peer_is_a_typed_refusal_with_the_ssl_cause() -> None:
    # Given a peer that answers a ClientHello with an HTTP error line
    async with server(b"HTTP/1.1 400 Bad Request\r\n\r\n") as port:
        net = Net(LIMITS)
        async with net.connect("127.0.0.1", port) as stream:
            # When the stream is upgraded to TLS
            with pytest.raises(TlsHandshakeError) as caught:
                await stream.start_tls(insecure_tls_context(), within=LIMITS.connect_timeout)
    # Then the error is typed (a ConnectError: TCP worked), not a timeout, with the ssl cause
    assert isinstance(caught.value, ConnectError) and not caught.value.timed_out
    assert isinstance(caught.value.__cause__, ssl.SSLError)


async def test_a_silent_peer_is_a_typed_handshake_timeout() -> None:
    # Given a peer that accepts TCP and never answers the ClientHello
    async with server(None) as port:
        net = Net(LIMITS)
        async with net.connect("127.0.0.1", port) as stream:
            # When the stream is upgraded to TLS with a short bound
            with pytest.raises(TlsHandshakeError) as caught:
                await stream.start_tls(insecure_tls_context(), within=0.5)
    # Then the error says it timed out
    assert caught.value.timed_out


async def test_web_client_gets_the_same_typed_error_through_httpx() -> None:
    # Given a plain-text peer, spoken to over https by the web client
    async with server(b"HTTP/1.1 400 Bad Request\r\n\r\n") as port:
        client = WebClient("127.0.0.1", port, "https", net=Net(LIMITS), limits=LIMITS,
                           deadline=time.monotonic() + 10)  # fmt: skip
        async with client:
            # When it sends a request
            with pytest.raises(TlsHandshakeError) as caught:
                await client.request("GET", "/")
    # Then the typed error reached it untouched by httpx, and the request log names it
    assert not caught.value.timed_out
    assert client.log.errors == ["TlsHandshakeError"]
