"""What the CLI calls for ``--workers``/``--scheduler``: one progress view, clear errors.

The library (``cluster``) never prints; this module renders its status on stderr, the way the
CLI's progress observer does for a local scan.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pacsradar.config import ScanOptions
from pacsradar.distributed.cluster import ClusterStatus, open_cluster, run_cluster_scan
from pacsradar.distributed.plan import ClusterPlan
from pacsradar.engine import Observer
from pacsradar.errors import UsageError
from pacsradar.models import ScanReport
from pacsradar.render import plural

if TYPE_CHECKING:
    from distributed import Client
    from rich.console import Console

    from pacsradar.session import ScanSession


def check_cluster_options(workers: int | None, scheduler: str | None) -> None:
    if workers is not None and scheduler is not None:
        raise UsageError("give --workers or --scheduler, not both")
    if workers is not None and not 1 <= workers <= 1024:
        raise UsageError("--workers must be 1 to 1024")
    if scheduler is not None:
        found = _SCHEDULER.fullmatch(scheduler.strip()) if len(scheduler) <= 300 else None
        if found is None or (found["port"] is not None and not 0 < int(found["port"]) < 65536):
            # Checked here, not by Dask: a garbled address leaves Dask a half-built client
            # whose clean-up blocks for 20 s at exit and prints a traceback.
            raise UsageError("--scheduler needs an address such as tcp://127.0.0.1:8786")


#: A Dask scheduler address: an optional protocol, a host name, IPv4 or [IPv6], a port.
_SCHEDULER = re.compile(
    r"(?:(?:tcp|tls|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def new_scan_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


class _Bar:
    """One rich bar for the whole cluster: endpoints, services found, rate, workers alive."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]cluster"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[found]} open · {task.fields[rate]}/s · {task.fields[workers]} workers"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("cluster", total=None, found=0, rate=0, workers=0)
        self.last = 0.0

    def __call__(self, status: ClusterStatus) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and status.done < status.total:
            return
        self.last = now
        self.progress.update(
            self.task,
            completed=status.done,
            total=status.total,
            found=status.found,
            rate=f"{status.rate:,.0f}",
            workers=status.workers,
        )


def cluster_scan(
    session: ScanSession,
    *,
    workers: int | None,
    scheduler: str | None,
    console: Console | None = None,
    progress: bool = False,
) -> ScanReport:
    """Run a :class:`ScanSession` on Dask: same plan, same store writer, same resume.

    The session stays the one writer: its store observer (plan included, so ``--resume``
    works as for a local scan) and its observers get every result, here in the client.
    Hostnames are resolved where they are scanned (on the worker), and every address a name
    yields is checked against the exclusions there.
    """
    session.scan_id = session.scan_id or new_scan_id()
    plan = ClusterPlan.build(session.scan_id, session.plan.scope(), session.options)
    session.total = max(0, plan.total - len(session.done))
    observers = [o for o in (session._store_observer(),) if o is not None]
    observers.extend(session.observers)
    with open_cluster(workers=workers, scheduler=scheduler) as client:
        failed = session.cluster_failed
        return _run(client, plan, observers, session.plan.targets, session.done, console, progress, failed)


def _run(
    client: Client,
    plan: ClusterPlan,
    observers: Sequence[Observer],
    scope_text: Sequence[str],
    done: AbstractSet[tuple[str, int]],
    console: Console | None,
    progress: bool,
    failed: list[str],
) -> ScanReport:
    def stopping(finished: int) -> None:
        if console is not None:
            kept = plural(finished, "finished endpoint")
            console.print(
                f"stopping: cancelling the shards in flight, keeping {kept}… (Ctrl-C again to quit at once)",
                markup=False,
                highlight=False,
            )

    if console is None or not progress:
        return run_cluster_scan(
            client, plan, observers, done=done, scope=scope_text, failed=failed, on_interrupt=stopping
        )
    bar = _Bar(console)
    with bar.progress:
        return run_cluster_scan(
            client,
            plan,
            observers,
            done=done,
            scope=scope_text,
            progress=bar,
            failed=failed,
            on_interrupt=stopping,
        )


class MonitorCluster:
    """A :class:`pacsradar.monitor.Monitor` scan function that runs every cycle on one cluster.

    The cluster is started (or reached) at the first cycle and kept for the next ones, so a
    failure to reach it is that cycle's error, reported like any other; ``close()`` ends it.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        workers: int | None,
        scheduler: str | None,
        exclude: Sequence[str] = (),
        allow_large: bool = False,
    ) -> None:
        from pacsradar.session import ScanPlan

        check_cluster_options(workers, scheduler)
        # A typo in the scope fails now, not after the first interval (as without a cluster).
        ScanPlan.build(targets, exclude, allow_large=allow_large)
        self.workers, self.scheduler = workers, scheduler
        self.exclude, self.allow_large = tuple(exclude), allow_large
        self._stack = contextlib.ExitStack()
        self._client: Client | None = None

    def __call__(
        self, targets: Sequence[str], options: ScanOptions, observers: Sequence[Observer]
    ) -> ScanReport:
        from pacsradar.session import ScanPlan

        scan_plan = ScanPlan.build(targets, self.exclude, options=options, allow_large=self.allow_large)
        if self._client is None:
            self._client = self._stack.enter_context(
                open_cluster(workers=self.workers, scheduler=self.scheduler)
            )
        plan = ClusterPlan.build(new_scan_id(), scan_plan.scope(), options)
        return run_cluster_scan(self._client, plan, observers, scope=scan_plan.targets)

    def close(self) -> None:
        self._client = None
        self._stack.close()


__all__ = ["MonitorCluster", "check_cluster_options", "cluster_scan", "new_scan_id"]
