"""One epoll set for the engine's TCP gate: many non-blocking connects, one loop callback."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import select

#: Linux's epoll; elsewhere :class:`pacsradar.net.Net` uses asyncio's add_writer per connect.
EPOLL = hasattr(select, "epoll")


class ConnectWaiter:
    """Waits for many non-blocking connects with one epoll set and one timer (Linux).

    A sweep's endpoints are nearly all refused or silent, and asyncio's ``add_writer`` +
    ``call_later`` per connect (a selector key, a handle, a heap entry each) was a quarter of
    a dead endpoint's CPU (issue 14). Here the loop watches a single epoll descriptor; its
    callback collects every finished connect in one ``poll``. All connects of one :class:`Net`
    share one timeout, so their deadlines arrive in order: a deque and one re-armed timer
    replace the heap.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self._ep = select.epoll()
        self._events = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
        self._pending: dict[int, asyncio.Future[bool]] = {}
        self._deadlines: collections.deque[tuple[float, int, asyncio.Future[bool]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        loop.add_reader(self._ep.fileno(), self._ready)

    async def wait(self, fd: int) -> bool:
        """True once ``fd``'s connect finished (either way), False at the timeout."""
        fut: asyncio.Future[bool] = self.loop.create_future()
        self._ep.register(fd, self._events)
        self._pending[fd] = fut
        deadline = self.loop.time() + self.timeout
        self._deadlines.append((deadline, fd, fut))
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._expire)
        try:
            return await fut
        finally:
            # Before the caller closes or hands over the socket: a descriptor number is reused.
            if self._pending.get(fd) is fut:
                del self._pending[fd]
                with contextlib.suppress(OSError):
                    self._ep.unregister(fd)

    def _ready(self) -> None:
        for fd, _ in self._ep.poll(0):
            fut = self._pending.pop(fd, None)
            with contextlib.suppress(OSError):
                self._ep.unregister(fd)
            if fut is not None and not fut.done():
                fut.set_result(True)

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        queue = self._deadlines
        while queue:
            deadline, fd, fut = queue[0]
            if fut.done():
                queue.popleft()
                continue
            if deadline > now:
                self._timer = self.loop.call_at(deadline, self._expire)
                return
            queue.popleft()
            if self._pending.get(fd) is fut:
                del self._pending[fd]
                with contextlib.suppress(OSError):
                    self._ep.unregister(fd)
            fut.set_result(False)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.loop.is_closed():
            self.loop.remove_reader(self._ep.fileno())
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()
        self._deadlines.clear()
        self._ep.close()


__all__ = ["EPOLL", "ConnectWaiter"]
