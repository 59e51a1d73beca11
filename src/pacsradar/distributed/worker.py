"""The worker side: one scan runtime per worker process, shared by every shard it runs.

A Dask task runs in one of the worker's threads; it hands its shard to an asyncio loop that the
process keeps for the scan, and waits. All shards of the process share that loop's rate
limiter, endpoint pool and per-host limiter, so the process never exceeds its share of the
cluster's ``--rate`` and ``--concurrency`` however many shards (threads) it runs at once, and
the connect-timeout tail of one shard overlaps the start of the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable

from pacsradar.distributed.plan import ClusterPlan, Compact, ShardResult, compact
from pacsradar.engine import Engine
from pacsradar.models import Attempt, AttemptStatus, Endpoint, TargetResult
from pacsradar.net import size_concurrency

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
        self.slots = asyncio.Semaphore(size_concurrency(plan.options.limits))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        with contextlib.suppress(RuntimeError):
            self.loop.close()

    async def run(self, endpoints: Iterable[Endpoint], worker: str) -> tuple[int, int, list[TargetResult]]:
        engine, slots, scope = self.engine, self.slots, self.plan.scope
        results: list[TargetResult] = []
        tasks: set[asyncio.Task[None]] = set()
        counts = [0, 0]

        async def one(endpoint: Endpoint) -> None:
            try:
                async with engine.hosts.slot(endpoint.host):
                    result = await engine.audit_endpoint(endpoint)
            except Exception as exc:  # a bug in one check never loses the shard
                result = TargetResult(
                    endpoint=endpoint,
                    reachable=False,
                    error="internal error",
                    attempts=(
                        Attempt(check="engine", status=AttemptStatus.ERROR, reason=type(exc).__name__),
                    ),
                )
            finally:
                slots.release()
            results.append(result)

        for endpoint in endpoints:
            counts[0] += 1
            # Exclusions win everywhere: the worker checks again before it connects.
            if scope.is_excluded(endpoint.host):
                counts[1] += 1
                continue
            await slots.acquire()
            task = asyncio.create_task(one(endpoint))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return counts[0], counts[1], results


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


def scan_shard(plan: ClusterPlan, shard: int, done: frozenset[tuple[str, int]] = frozenset()) -> ShardResult:
    """The Dask task: audit one shard, return its compact result (never raises for a target)."""
    runtime = _runtime_for(plan)
    worker = _worker_name()
    future = asyncio.run_coroutine_threadsafe(runtime.run(plan.endpoints(shard, done), worker), runtime.loop)
    seen, excluded, results = future.result()
    full: list[TargetResult] = []
    small: list[Compact] = []
    for result in results:
        item = compact(result)
        if item is None:
            full.append(result.model_copy(update={"worker": worker}))
        else:
            small.append(item)
    return ShardResult(
        scan_id=plan.scan_id,
        shard=shard,
        worker=worker,
        endpoints=seen,
        excluded=excluded,
        results=tuple(full),
        unreachable=tuple(small),
    )


__all__ = ["scan_shard"]
