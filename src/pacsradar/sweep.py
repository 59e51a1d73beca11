"""A sweep through the SYN gate, and the columns that dead endpoints travel in.

Split from :mod:`pacsradar.engine` so that each stays one concern: the engine audits an
endpoint; this module pushes a run's (or a Dask shard's) IPv4 endpoints through one raw socket
(:mod:`pacsradar.syngate`) and groups the refused and silent ones (issue 14). It knows the
engine only through the callables it is handed, so it imports nothing above it.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pacsradar.checks import log_internal
from pacsradar.config import Limits
from pacsradar.errors import ScanError
from pacsradar.models import TargetResult, UnreachableGroup
from pacsradar.net import refused_message, timeout_message
from pacsradar.pools import wanted_in_flight

if TYPE_CHECKING:
    from pacsradar.syngate import SynGate

log = logging.getLogger(__name__)

#: What :meth:`~pacsradar.engine.Engine.audit_address` returns for a refused or silent port:
#: (error, timed out).
Gated = tuple[str, bool]


#: Lanes that send a run's (or a shard's) SYNs: enough to keep 20,000 a second paced while
#: some wait on the rate limiter; an endpoint waiting for its answer holds none.
SYN_LANES = 64

#: A local scan hands its dead endpoints to the observers every this many rows, or seconds.
GROUP_ROWS = 2048
GROUP_SECONDS = 0.5


class DeadColumns:
    """Refused and silent endpoints as columns per (error, timed out), until handed on."""

    __slots__ = ("_columns", "_count", "_first", "_started")

    def __init__(self) -> None:
        self._columns: dict[Gated, tuple[list[str], list[int]]] = {}
        self._count = 0
        self._first = 0.0
        self._started = datetime.now(UTC)

    def add(self, host: str, port: int, key: Gated) -> bool:
        """Keep one; True when the batch is due (rows or seconds)."""
        if not self._count:
            self._first = time.monotonic()
            self._started = datetime.now(UTC)
        column = self._columns.get(key)
        if column is None:
            column = self._columns[key] = ([], [])
        column[0].append(host)
        column[1].append(port)
        self._count += 1
        return self._count >= GROUP_ROWS or time.monotonic() - self._first >= GROUP_SECONDS

    def take(self, worker: str | None = None) -> list[UnreachableGroup]:
        """The kept endpoints as groups (started when the first of them was kept); empties."""
        groups = [
            UnreachableGroup(
                error=error,
                timed_out=timed_out,
                hosts=tuple(h),
                ports=tuple(p),
                started_at=self._started,
                worker=worker,
            )
            for (error, timed_out), (h, p) in self._columns.items()
        ]
        self._columns, self._count = {}, 0
        return groups


def use_syn(limits: Limits, in_flight: int) -> bool:
    """``Limits.gate``: "syn" always, "connect" never, "auto" when the connect gate's pool
    (one descriptor per endpoint) is smaller than what the rate needs and this process may
    open a raw socket (issue 14)."""
    if limits.gate == "connect":
        return False
    if limits.gate == "auto" and (limits.rate <= 0 or in_flight >= wanted_in_flight(limits)):
        return False
    from pacsradar.syngate import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        if limits.gate == "syn":
            raise ScanError(reason)
        return False
    return True


class Room:
    """The endpoints a process may have in flight through the SYN gate: a counting semaphore
    whose release is O(1).

    ``asyncio.Semaphore`` (3.11) scans its waiters on every release and removes a woken one
    from the middle of a deque; the gate's reader releases thousands at once while its lanes
    wait, so that scan was most of the SYN sweep's CPU (profiled: 8 million ``Future.done``
    calls for 65,536 endpoints). Here a release hands its slot straight to the oldest waiter.
    """

    __slots__ = ("_waiters", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # a release hands the slot over: ``free`` was not incremented for it
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over, then cancelled before it ran: pass the slot on
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():  # a cancelled waiter is skipped (each is popped once)
                fut.set_result(None)
                return
        self.free += 1


class Sweep:
    """One run's (or shard's) IPv4 endpoints through the SYN gate.

    :meth:`offer` takes a rate token and sends the SYN; the caller goes on to its next address
    at once, so an endpoint waiting for its answer is no task, socket or future, only an entry
    in the gate. Refused and silent endpoints go to ``on_dead`` with the connect gate's very
    errors; an open one is audited in a task of its own (``audit``: the engine's
    ``audit_address``, which connects for real) and goes to ``on_result`` (or ``on_dead`` if it
    refused the connect). ``room`` bounds the endpoints in flight across the process.
    """

    def __init__(
        self,
        gate: SynGate,
        room: Room,
        *,
        gated: Callable[[str, int], bool],
        token: Callable[[], Awaitable[None]],
        audit: Callable[[str, int], Awaitable[TargetResult | Gated]],
        timeout: float,
        on_dead: Callable[[str, int, Gated], None],
        on_result: Callable[[TargetResult], None],
    ) -> None:
        self.gate = gate
        self.room = room
        self.gated = gated
        self.token = token
        self.audit = audit
        self.on_dead = on_dead
        self.on_result = on_result
        self._waiting = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._audits: set[asyncio.Task[None]] = set()
        self._refused: Gated = (refused_message(errno.ECONNREFUSED), False)
        self._silent: Gated = (timeout_message(timeout), True)

    async def offer(self, host: str, port: int) -> bool:
        """Send this endpoint's SYN; False if it is not for the SYN gate (IPv6, a port whose
        first auditor is not gated, a busy gate): the caller audits it itself."""
        if not self.gated(host, port):
            return False
        await self.room.acquire()
        try:
            await self.token()
        except BaseException:
            self.room.release()
            raise
        # Counted as waiting before the send: the gate may read this very answer inside send().
        self._waiting += 1
        self._idle.clear()
        why = self.gate.send(host, port, self._reply)
        if why is None:
            if not self.gate.sent & 0xFF:
                # Unpaced (--rate 0) and with room to spare nothing above suspends: yield now
                # and then so the gate's reader, the progress bar and Ctrl-C get their turn.
                await asyncio.sleep(0)
            return True
        self._done()
        self.room.release()
        if why == "busy":
            return False
        self.on_dead(host, port, (why, False))
        return True

    def _reply(self, host: str, port: int, outcome: int) -> None:
        if outcome == 0:  # syngate.OPEN
            task = asyncio.create_task(self._audit(host, port))
            self._audits.add(task)
            task.add_done_callback(self._audited)
            return
        self.room.release()
        self._done()
        try:
            self.on_dead(host, port, self._refused if outcome == 1 else self._silent)
        except Exception as exc:  # never into the gate's reader: the other answers still count
            log_internal(log, "SYN gate reply", exc)

    async def _audit(self, host: str, port: int) -> None:
        got = await self.audit(host, port)  # never raises: the engine's envelope is inside
        if isinstance(got, tuple):
            self.on_dead(host, port, got)
        else:
            self.on_result(got)

    def _audited(self, task: asyncio.Task[None]) -> None:
        self._audits.discard(task)
        self.room.release()
        self._done()

    def _done(self) -> None:
        self._waiting -= 1
        if self._waiting <= 0:
            self._idle.set()

    async def drain(self) -> None:
        """Wait until every endpoint offered has its answer (or its timeout) and its audit."""
        await self._idle.wait()

    def cancel(self) -> None:
        """Drop the endpoints still waiting (no record, as for a cancelled connect) and cancel
        the audits in flight; gives their room back."""
        mine = self._reply
        dropped = self.gate.forget(lambda reply: reply == mine)
        for _ in range(dropped):
            self.room.release()
        for task in tuple(self._audits):
            task.cancel()
        self._waiting = 0
        self._idle.set()


__all__ = ["GROUP_ROWS", "GROUP_SECONDS", "SYN_LANES", "DeadColumns", "Gated", "Room", "Sweep", "use_syn"]
