"""The lean DICOM connection (net.PduStream) against real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from pacsradar.config import Limits
from pacsradar.errors import PeerClosed, ReadTimeout
from pacsradar.net import Net


class _Server:
    """A loopback server whose handlers are all finished (writers closed) on exit."""

    def __init__(
        self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> None:
        self.handler = handler
        self.tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def _on_client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.handler(r, w)
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()

    async def __aenter__(self) -> _Server:
        self.server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 5)
        await self.server.wait_closed()


async def test_a_flooding_peer_costs_bounded_memory() -> None:
    # Given a peer that sends 8 MB as fast as it can, whatever we do
    async def flood(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        for _ in range(128):
            w.write(b"\x00" * 65536)
            await w.drain()

    async with (
        _Server(flood) as server,
        Net(Limits(read_timeout=2.0)).connect_pdu("127.0.0.1", server.port) as stream,
    ):
        # When we read only 6 bytes and then idle for a while
        assert len(await stream.read_exactly(6)) == 6
        async with asyncio.timeout(30):  # until the flood reaches the high-water mark
            while not stream._p.reading_paused:
                await asyncio.sleep(0.01)
        # Then the receive buffer stays bounded (reading pauses at the high-water mark)
        assert len(stream._p.buffer) <= 256 * 1024 + 65536 * 4
        assert stream._p.reading_paused


async def test_short_reply_then_close_is_peer_closed_with_the_byte_count() -> None:
    # Given a peer that sends 3 bytes and hangs up
    async def short(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"abc")
        await w.drain()

    async with (
        _Server(short) as server,
        Net(Limits(read_timeout=2.0)).connect_pdu("127.0.0.1", server.port) as stream,
    ):
        # When we wait for 6 bytes, Then it is PeerClosed, saying how far it got
        with pytest.raises(PeerClosed, match="after 3 of 6 bytes"):
            await stream.read_exactly(6)


async def test_a_silent_peer_times_out_and_a_later_read_still_gets_the_bytes() -> None:
    # Given a peer that answers only once our first read has given up (an event, not a delay)
    first_read_gave_up = asyncio.Event()

    async def late(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await first_read_gave_up.wait()
        w.write(b"123456")
        await w.drain()

    async with (
        _Server(late) as server,
        Net(Limits(read_timeout=2.0)).connect_pdu("127.0.0.1", server.port) as stream,
    ):
        # When a first read gives up after 0.1 s
        with pytest.raises(ReadTimeout):
            await stream.read_exactly(6, 0.1)
        first_read_gave_up.set()
        # Then nothing was consumed: a second, patient read gets all six bytes
        assert await stream.read_exactly(6) == b"123456"
