"""The worker side: one scan runtime per worker process, shared by every shard it runs.

A Dask task runs in one of the worker's threads; it hands its shard to an asyncio loop that the
process keeps for the scan, and waits. All shards of the process share that loop's rate
limiter, endpoint pool and per-host limiter, so the process never exceeds its share of the
cluster's ``--rate`` and ``--concurrency`` however many shards (threads) it runs at once, and
the connect-timeout tail of one shard overlaps the start of the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from pacsradar.distributed.plan import ClusterPlan, ShardResult
from pacsradar.engine import Engine
from pacsradar.models import TargetResult
from pacsradar.sweep import SYN_LANES, DeadColumns

log = logging.getLogger(__name__)


class _Runtime:
    """The scan's engine and event loop in this process (a daemon thread)."""

    def __init__(self, plan: ClusterPlan) -> None:
        from pacsradar.scan import default_auditors

        self.key = (plan.scan_id, plan.options.limits)
        self.plan = plan
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pacsradar-scan", daemon=True)
        self.thread.start()
        self.engine = Engine(
            plan.options,
            default_auditors(plan.options),
            scan_id=plan.scan_id,
            excluded=plan.scope.is_excluded,
        )
        self.cap = self.engine.in_flight
        self.slots = asyncio.Semaphore(self.cap)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.engine.close_gates()
        with contextlib.suppress(RuntimeError):
            self.loop.close()

    async def run(self, addresses: Sequence[tuple[str, int]]) -> _ShardOut:
        """Audit the shard's addresses with lanes, each started on one of the process's slots.

        A lane is started only when one of the process's ``cap`` slots is free, and gives it
        back when the shard has no address left, so shards that run at once (the worker's
        threads) never exceed the process's share of ``--concurrency``, and a waiting shard
        costs one waiter, not a lane per endpoint. A dead endpoint costs no task, no model and
        no record: only its address, appended to the column of its error (issue 14). Under the
        SYN gate (:class:`~pacsradar.sweep.Sweep`) a few lanes only send SYNs; the endpoints
        waiting for an answer hold no lane.
        """
        engine, slots, scope = self.engine, self.slots, self.plan.scope
        check_exclusions = scope.has_exclusions
        out = _ShardOut()
        n = len(addresses)
        cursor = [0]

        def dead(host: str, port: int, got: tuple[str, bool]) -> None:
            out.dead.add(host, port, got)

        sweep = engine.sweep(dead, out.results.append)

        async def lane() -> None:
            while cursor[0] < n:
                host, port = addresses[cursor[0]]
                cursor[0] += 1
                out.seen += 1
                # Exclusions win everywhere: the worker checks again before it connects.
                if check_exclusions and scope.is_excluded(host):
                    out.excluded += 1
                    continue
                if sweep is not None and await sweep.offer(host, port):
                    continue
                got = await engine.audit_pair(host, port)  # a bug in one check never loses the shard
                if isinstance(got, tuple):
                    out.dead.add(host, port, got)
                else:
                    out.results.append(got)

        def give_back(_: asyncio.Task[None]) -> None:
            slots.release()  # a done callback: runs even for a lane cancelled before it started

        most = n if sweep is None else min(n, SYN_LANES)
        lanes: list[asyncio.Task[None]] = []
        try:
            while cursor[0] < n and len(lanes) < most:
                await slots.acquire()
                if cursor[0] >= n:
                    slots.release()
                    break
                task = asyncio.create_task(lane())
                task.add_done_callback(give_back)
                lanes.append(task)
            await asyncio.gather(*lanes)
            if sweep is not None:
                await sweep.drain()
        finally:
            for task in lanes:
                task.cancel()
            if sweep is not None:
                sweep.cancel()  # no-op once drained; a cancelled shard's SYNs get no record
        return out


class _ShardOut:
    """One shard's results as the lanes collect them."""

    __slots__ = ("dead", "excluded", "results", "seen")

    def __init__(self) -> None:
        self.seen = 0
        self.excluded = 0
        self.results: list[TargetResult] = []
        self.dead = DeadColumns()


_lock = threading.Lock()
_runtime: _Runtime | None = None


def _runtime_for(plan: ClusterPlan) -> _Runtime:
    global _runtime
    with _lock:
        if _runtime is None or _runtime.key != (plan.scan_id, plan.options.limits):
            if _runtime is not None:
                _runtime.close()
            _runtime = _Runtime(plan)
        return _runtime


def _worker_name() -> str:
    try:
        from distributed import get_worker

        w = get_worker()
        return str(w.name if w.name is not None else w.address)[:64]
    except (ImportError, ValueError):
        return "local"


class ShardCancelled(Exception):
    """The client cancelled this shard (Ctrl-C): its endpoints stop, its result is not wanted."""


def _cancelled() -> bool:
    """Whether the client cancelled the task this thread runs (Dask never stops a running task:
    it marks it; a task that keeps running holds its worker's sockets and, at shutdown, makes
    the nanny wait 4 s before it kills the process)."""
    try:
        from dask.context import thread_state  # where Dask's executor records the task's key
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return False
    key = getattr(thread_state, "key", None)
    task = worker.state.tasks.get(key) if key is not None else None
    # Only a task seen in a cancelled state: anything unexpected keeps the shard running.
    return task is not None and task.state in ("cancelled", "released", "forgotten")


def scan_shard(
    plan: ClusterPlan, shard: int, done: AbstractSet[tuple[str, int]] = frozenset()
) -> ShardResult:
    """The Dask task: audit one shard, return its compact result (never raises for a target).

    Raises :class:`ShardCancelled` (checked four times a second) once the client cancelled it.
    """
    runtime = _runtime_for(plan)
    worker = _worker_name()
    future = asyncio.run_coroutine_threadsafe(runtime.run(list(plan.addresses(shard, done))), runtime.loop)
    while True:
        try:
            out = future.result(timeout=0.25)
            break
        except concurrent.futures.TimeoutError:
            if _cancelled():
                future.cancel()  # the lanes are cancelled on the loop: their sockets close
                raise ShardCancelled(f"shard {shard} of scan {plan.scan_id[:64]} was cancelled") from None
    return ShardResult(
        scan_id=plan.scan_id,
        shard=shard,
        worker=worker,
        endpoints=out.seen,
        excluded=out.excluded,
        results=tuple(r.model_copy(update={"worker": worker}) for r in out.results),
        unreachable=tuple(out.dead.take(worker)),
    )


__all__ = ["ShardCancelled", "scan_shard"]
