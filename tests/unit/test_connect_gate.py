"""The engine's TCP gate under load: one epoll set for many connects, a fast per-host limiter.

Real sockets on loopback (refused, accepted, and a full accept queue for a dropped SYN).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from lab.ports import dropping_port, listening_port
from pacsradar.config import Limits
from pacsradar.errors import ConnectError, ConnectTimeout
from pacsradar.net import HostLimiter, Net, RateLimiter


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    with listening_port("127.0.0.81") as endpoint:
        yield endpoint


@pytest.fixture
def dropping() -> Iterator[tuple[str, int]]:
    with dropping_port("127.0.0.82") as endpoint:
        yield endpoint


async def test_many_gate_connects_share_one_waiter_and_each_gets_its_own_answer(
    listener: tuple[str, int], dropping: tuple[str, int]
) -> None:
    # Given one Net and, at once, open, refused and dropped endpoints
    net = Net(Limits(connect_timeout=0.5, rate=0))
    host, port = listener

    async def outcome(h: str, p: int) -> str:
        try:
            sock = await net.probe(h, p)
        except ConnectTimeout:
            return "filtered"
        except ConnectError:
            return "closed"
        sock.close()
        return "open"

    # When they are probed concurrently
    wanted = [(host, port)] * 20 + [("127.0.0.83", 9)] * 20 + [dropping] * 3
    try:
        got = await asyncio.gather(*(outcome(h, p) for h, p in wanted))
    finally:
        net.close()
    # Then every endpoint gets nmap's state of its own port, none mixed up
    assert got == ["open"] * 20 + ["closed"] * 20 + ["filtered"] * 3


async def test_a_cancelled_gate_connect_leaves_nothing_registered(dropping: tuple[str, int]) -> None:
    # Given a connect that will never complete
    net = Net(Limits(connect_timeout=30.0, rate=0))
    task = asyncio.create_task(net.probe(*dropping))
    await asyncio.sleep(0.05)
    # When it is cancelled (Ctrl-C, a deadline)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Then the waiter forgot it, and a later probe on the same Net still works
    waiter = net._waiter
    assert waiter is not None and not waiter._pending
    with pytest.raises(ConnectError):
        await net.probe("127.0.0.83", 9)
    net.close()


async def test_host_limiter_hands_a_slot_on_and_survives_a_cancelled_waiter() -> None:
    # Given a per-host limit of 1, one holder and two waiters
    limiter = HostLimiter(1)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot("h"):
            order.append("holder")
            await release.wait()

    async def waiter(name: str) -> None:
        async with limiter.slot("h"):
            order.append(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(waiter("cancelled"))
    second = asyncio.create_task(waiter("second"))
    await asyncio.sleep(0)
    # When the first waiter is cancelled and the holder then leaves
    cancelled.cancel()
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, second, return_exceptions=True)
    # Then the slot passed to the remaining waiter, and the idle host is forgotten
    assert order == ["holder", "second"]
    assert cancelled.cancelled()
    assert limiter._hosts == {}


async def test_the_rate_limiter_schedules_waiters_side_by_side_and_refunds_a_cancelled_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a limiter of 10 connections per second on a clock that stands still
    clock = [100.0]
    monkeypatch.setattr("pacsradar.net.time.monotonic", lambda: clock[0])
    limiter = RateLimiter(10)
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(round(delay, 6))
        await real_sleep(0)

    monkeypatch.setattr("pacsradar.net.asyncio.sleep", fake_sleep)
    # When 13 connections ask at once
    await asyncio.gather(*(limiter.acquire() for _ in range(13)))
    # Then the burst (one second's worth) passes at once, and each later one waits for its own
    # token, all of them at the same time (no queue behind a lock)
    assert slept == [0.1, 0.2, 0.3]
    # And a waiter cancelled while it waits gives its token back to the next one
    task = asyncio.ensure_future(limiter.acquire())
    await real_sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    slept.clear()
    await limiter.acquire()
    assert slept == [0.4]
