"""The SYN sweep's room: a counting semaphore whose release hands the slot to the oldest waiter."""

from __future__ import annotations

import asyncio

import pytest

from pacsradar.sweep import Room


def test_a_release_hands_the_slot_to_the_oldest_waiter() -> None:
    async def main() -> list[str]:
        # Given a room of one, taken, and two lanes waiting in order
        room = Room(1)
        await room.acquire()
        order: list[str] = []

        async def lane(name: str) -> None:
            await room.acquire()
            order.append(name)

        first, second = asyncio.create_task(lane("first")), asyncio.create_task(lane("second"))
        await asyncio.sleep(0)
        # When the slot is released once
        room.release()
        await asyncio.sleep(0)
        # Then only the oldest waiter got it, and nothing was counted free
        assert order == ["first"] and room.free == 0
        room.release()
        await asyncio.gather(first, second)
        return order

    assert asyncio.run(main()) == ["first", "second"]


def test_a_cancelled_waiter_is_skipped_and_a_handed_slot_is_passed_on() -> None:
    async def main() -> None:
        # Given a full room of one and three waiters
        room = Room(1)
        await room.acquire()
        got: list[str] = []

        async def lane(name: str) -> None:
            await room.acquire()
            got.append(name)

        a, b, c = (asyncio.create_task(lane(n)) for n in "abc")
        await asyncio.sleep(0)
        # When a is cancelled while waiting, and b is handed the slot but cancelled before it runs
        a.cancel()
        await asyncio.sleep(0)
        room.release()
        b.cancel()
        await asyncio.gather(a, b, return_exceptions=True)
        await asyncio.sleep(0)
        # Then the slot reached c: none is lost, none is made up
        assert got == ["c"] and room.free == 0
        room.release()
        assert room.free == 1
        await c

    asyncio.run(main())


@pytest.mark.parametrize("size", [0, 3])
def test_releases_without_waiters_count_up(size: int) -> None:
    # Given a room with no waiters
    room = Room(size)
    # When slots are released
    room.release()
    room.release()
    # Then they are free for the next acquirers
    assert room.free == size + 2
