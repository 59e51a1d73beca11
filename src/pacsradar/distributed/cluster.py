"""The client side of a distributed scan: shards out, compact results in, one writer.

Only this process writes the store, the reports and the alerts: it feeds each result to the
same observers a local scan has. Shards are submitted lazily (a few per worker thread in
flight), each under the key ``pacsradar-<scan>-<run>-<shard>``; Dask re-runs the shards
of a worker that died, and the client accepts each shard once, so every endpoint is reported
exactly once. ``--rate`` and ``--concurrency`` are cluster totals: the plan each worker gets
carries its share.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pacsradar.distributed.plan import ClusterPlan, ShardResult
from pacsradar.doneset import DoneSet
from pacsradar.engine import Observer, observer_failed
from pacsradar.errors import ClusterError, PacsradarError
from pacsradar.models import ScanReport, TargetResult, UnreachableGroup
from pacsradar.outcome import error_state, port_state, scan_report, untested_reason

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

#: Threads per LocalCluster worker process: shards that overlap on one process share its rate
#: and pool (see worker.py), so a shard's connect-timeout tail never idles the process.
LOCAL_THREADS = 16
#: Seconds to reach a scheduler (and for a LocalCluster's workers to come up).
CONNECT_TIMEOUT = 10.0


@dataclass
class ClusterStatus:
    """What the client's single progress view shows."""

    done: int
    total: int
    found: int
    rate: float
    workers: int


@contextlib.contextmanager
def open_cluster(*, workers: int | None = None, scheduler: str | None = None) -> Iterator[Client]:
    """A Dask client on a new LocalCluster of ``workers`` processes, or on ``scheduler``."""
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - distributed is a default dependency
        raise ClusterError("--workers/--scheduler need the 'distributed' package") from exc
    # Dask's own INFO lines (worker start, restart) would drown the scan's output.
    for name in ("distributed", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(logging.ERROR)
    cluster: Any = None
    try:
        if scheduler is not None:
            try:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {scheduler[:100]!r}") from exc
        else:
            n = max(1, workers or 1)
            try:
                with _workers_ignore_sigint():
                    cluster = distributed.LocalCluster(
                        n_workers=n,
                        threads_per_worker=LOCAL_THREADS,
                        processes=True,
                        # ":0", not None: the scheduler always serves HTTP (health, metrics), on
                        # 8787 unless told otherwise, and a second cluster would warn about it.
                        dashboard_address=":0",
                        silence_logs=logging.ERROR,
                        scheduler_port=0,
                        host="127.0.0.1",
                    )
                client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"cannot start a local Dask cluster ({type(exc).__name__})") from exc
        try:
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise ClusterError("the Dask cluster has no worker") from exc
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
    finally:
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Start local worker processes with SIGINT ignored (inherited through exec).

    Ctrl-C reaches the whole process group. The client handles it (cancel, keep what finished,
    close the cluster); workers that also got it would die mid-shard with a traceback each.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _workers(client: Client) -> tuple[int, int]:
    """(worker processes, worker threads) the scheduler knows now."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return len(info), sum(int(w.get("nthreads", 1)) for w in info.values())


def run_cluster_scan(
    client: Client,
    plan: ClusterPlan,
    observers: Sequence[Observer] = (),
    *,
    done: AbstractSet[tuple[str, int]] = frozenset(),
    scope: Sequence[str] = (),
    progress: Callable[[ClusterStatus], None] | None = None,
    stop: Callable[[], bool] | None = None,
    failed: list[str] | None = None,
    on_interrupt: Callable[[int], None] | None = None,
) -> ScanReport:
    """Run ``plan`` on ``client``'s cluster; results stream to ``observers`` as shards finish.

    ``done`` are endpoints already finished (``--resume``): grouped by shard here, skipped there.
    Ctrl-C (KeyboardInterrupt) or ``stop()`` cancels every pending shard and keeps what finished.
    An observer that raises (the store) is dropped and named in ``failed`` ("Class.hook
    (ExcType)"), as the local engine does; the scan and the other observers go on.
    ``on_interrupt(done)`` is called once, from this thread, when the first Ctrl-C is seen (the
    CLI prints its "stopping" line there; the library never prints).
    """
    from distributed import as_completed

    from pacsradar.distributed.worker import scan_shard

    started = datetime.now(UTC)
    n_proc, n_threads = _workers(client)
    shared = plan.share(n_proc)
    total = max(0, plan.total - len(done))
    by_shard: dict[int, DoneSet] = {}
    for host, port in done:
        shard = plan.shard_of(host)
        if shard is not None:
            got = by_shard.get(shard)
            if got is None:
                got = by_shard[shard] = DoneSet()
            got.add(host, port)
    if plan.options.limits.gate == "syn":
        _check_syn_workers(client)
    fan = _Fanout(observers, failed if failed is not None else [])
    fan.call("on_start", plan.scan_id, total)

    counts = {"done": 0, "open": 0, "closed": 0, "filtered": 0, "error": 0}
    kept: list[TargetResult] = []
    accepted: set[int] = set()
    shards = iter(range(plan.sharding.count))
    in_flight = max(4, 2 * n_threads)
    t0 = time.monotonic()
    alive: list[float] = [float(n_proc), t0 + 1.0]  # workers alive, next time to ask

    # One token per run: a resumed scan (same scan id) submits its shards under new keys, never
    # under those of the run it resumes, whose cancellation the scheduler may still be applying.
    run = secrets.token_hex(3)

    def submit(ac: Any) -> bool:
        shard = next(shards, None)
        if shard is None:
            return False
        kept_done = by_shard.pop(shard, None)
        prior: AbstractSet[tuple[str, int]] = kept_done if kept_done is not None else frozenset()
        key = f"pacsradar-{plan.scan_id}-{run}-{shard}"
        future = client.submit(scan_shard, shared, shard, prior, key=key, retries=1, pure=False)
        ac.append(future) if isinstance(ac, list) else ac.add(future)
        return True

    def feed(result: TargetResult) -> None:
        # The engine's own counting (outcome.py: nmap's port states, "could not test").
        counts["done"] += 1
        state = port_state(result)
        counts["closed" if state == "unresolved" else state] += 1
        if untested_reason(result) is not None:
            counts["error"] += 1
        if result.reachable:
            kept.append(result)
        fan.call("on_result", result)

    def feed_group(group: UnreachableGroup) -> None:
        # Refused or silent endpoints, one error: counted and stored as a group (issue 14).
        n = len(group)
        if n == 0:
            return
        counts["done"] += n
        state = error_state(group.error)
        counts["closed" if state == "unresolved" else state] += n
        fan.group(group)

    interrupted = False
    first: list[Any] = []
    for _ in range(in_flight):
        if not submit(first):
            break
    ac = as_completed(first, loop=client.loop)
    # Ctrl-C may land while Dask runs a gc callback, which swallows a KeyboardInterrupt and
    # prints it; so the handler sets a flag that the loop checks while it waits (_completed).
    sigint = [False]
    previous_handler = None
    if threading.current_thread() is threading.main_thread():

        def on_sigint(signum: int, frame: Any) -> None:
            # First press: a flag only (raising here could land in that gc callback and print
            # a traceback); the loop stops within 50 ms. A second press raises.
            if sigint[0]:
                raise KeyboardInterrupt
            sigint[0] = True

        previous_handler = signal.signal(signal.SIGINT, on_sigint)

    def stopping() -> bool:
        if sigint[0] and on_interrupt is not None and not told[0]:
            told[0] = True
            on_interrupt(counts["done"])
        return sigint[0] or (stop is not None and stop())

    told = [False]

    failure: Exception | None = None
    try:
        for future in _completed(ac, stopping):
            try:
                part: ShardResult = future.result()
            except Exception as exc:  # the task raised on its worker (after Dask's retry)
                failure = exc
                break
            if part.shard not in accepted and part.scan_id == plan.scan_id:
                accepted.add(part.shard)  # a re-run shard is accepted once
                for result in part.results:
                    feed(result)
                for group in part.unreachable:
                    feed_group(group)
            future.release()
            if stopping():
                raise KeyboardInterrupt
            submit(ac)
            if progress is not None:
                now = time.monotonic()
                if now >= alive[1]:  # ask the scheduler at most once a second
                    alive[:] = [_workers(client)[0], now + 1.0]
                progress(
                    ClusterStatus(
                        done=counts["done"],
                        total=total,
                        found=counts["open"],
                        rate=counts["done"] / max(1e-6, now - t0),
                        workers=int(alive[0]),
                    )
                )
    except KeyboardInterrupt:
        interrupted = True
        with contextlib.suppress(Exception):
            client.cancel(list(ac.futures))
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    if failure is not None:
        with contextlib.suppress(Exception):
            client.cancel(list(ac.futures))
    interrupted = interrupted or sigint[0] or failure is not None
    report = scan_report(plan.scan_id, plan.options, started, scope, counts, total, interrupted, kept)
    fan.call("on_finish", report)  # what finished is stored, the scan marked interrupted
    if failure is not None:
        raise ClusterError(_shard_failure(failure)) from None
    return report


def _shard_failure(exc: Exception) -> str:
    """One line for a shard task that raised: our own message for our own errors (bounded),
    only the type otherwise (a stray message could quote a peer)."""
    what = str(exc)[:300] if isinstance(exc, PacsradarError) else type(exc).__name__
    return f"a shard failed on a worker ({what}); what finished is kept: --resume redoes the rest"


def _check_syn_workers(client: Client) -> None:
    """``--gate syn`` on a cluster: every worker must be able to open the raw socket."""
    from pacsradar.syngate import unavailable_reason

    try:
        reasons = client.run(unavailable_reason)
    except Exception as exc:
        raise ClusterError(
            f"cannot ask the workers whether they can send SYNs ({type(exc).__name__})"
        ) from None
    for worker, reason in sorted(reasons.items()):
        if reason is not None:
            raise ClusterError(f"--gate syn: the worker at {str(worker)[:100]}: {str(reason)[:200]}")


def _completed(ac: Any, stopping: Callable[[], bool]) -> Iterator[Any]:
    """The futures of ``ac`` as they complete, with ``stopping()`` asked every 50 ms while none
    is ready: a Ctrl-C never waits for a shard (a shard lasts a connect timeout or more)."""
    while not ac.is_empty():
        if not ac.has_ready():
            if stopping():
                raise KeyboardInterrupt
            time.sleep(0.05)
            continue
        yield from ac.next_batch(block=False)


class _Fanout:
    """The client's observers: one that raises is dropped and named, never the scan."""

    def __init__(self, observers: Sequence[Observer], failed: list[str]) -> None:
        self.live = list(observers)
        self.failed = failed

    def call(self, method: str, *args: object) -> None:
        for obs in tuple(self.live):
            try:
                getattr(obs, method)(*args)
            except Exception as exc:
                self._drop(obs, method, exc)

    def group(self, group: UnreachableGroup) -> None:
        """A worker's dead endpoints: ``on_unreachable`` where an observer has it, else one
        ``on_result`` each."""
        for obs in tuple(self.live):
            bulk = getattr(obs, "on_unreachable", None)
            method = "on_unreachable" if bulk is not None else "on_result"
            try:
                if bulk is not None:
                    bulk(group)
                else:
                    for result in group.results():
                        obs.on_result(result)
            except Exception as exc:
                self._drop(obs, method, exc)

    def _drop(self, obs: Observer, method: str, exc: Exception) -> None:
        self.live.remove(obs)
        self.failed.append(observer_failed(obs, method, exc))


__all__ = ["ClusterError", "ClusterStatus", "open_cluster", "run_cluster_scan"]
