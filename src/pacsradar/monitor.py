"""Continuous monitoring: scan on a schedule, store, diff against the last scan, alert on changes.

``pacsradar monitor TARGETS --every 6h`` loops; ``--once`` runs one cycle for cron or a systemd
timer. Each cycle is an ordinary stored scan, so ``pacsradar diff`` and the dashboard see it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pacsradar.alerts import Alert, AlertSink, Delivery, build_alert, dispatch
from pacsradar.config import ScanOptions
from pacsradar.engine import Observer
from pacsradar.errors import PacsradarError, UsageError
from pacsradar.models import ScanReport, Severity
from pacsradar.store import ScanDiff, Store, StoreObserver

log = logging.getLogger(__name__)

#: ``scan(targets, options, observers)``; it may return the report or an awaitable of it.
ScanFunction = Callable[[Sequence[str], ScanOptions, Sequence[Observer]], ScanReport | Awaitable[ScanReport]]

_INTERVAL = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str) -> float:
    """``6h``, ``90m``, ``1h30m``, ``1d``, ``45s`` or plain seconds -> seconds."""
    raw = text.strip().lower()
    if not raw:
        raise UsageError("empty interval")
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        seconds = float(raw)
    else:
        pos = 0
        seconds = 0.0
        for m in _INTERVAL.finditer(raw):
            if raw[pos : m.start()].strip():
                raise UsageError("interval must look like 6h, 90m, 1h30m or 3600")
            seconds += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        if pos == 0 or raw[pos:].strip():
            raise UsageError("interval must look like 6h, 90m, 1h30m or 3600")
    if seconds <= 0:
        raise UsageError("interval must be positive")
    return seconds


def default_scan(
    targets: Sequence[str],
    options: ScanOptions,
    observers: Sequence[Observer],
    *,
    exclude: Sequence[str] = (),
    allow_large: bool = False,
) -> ScanReport:
    """Scan ``targets`` minus ``exclude`` through a :class:`~pacsradar.session.ScanSession`."""
    from pacsradar.session import ScanPlan, ScanSession

    plan = ScanPlan.build(targets, exclude, options=options, allow_large=allow_large)
    session = ScanSession(plan, observers=observers, hasher=options.hasher)
    return session.run(handle_sigint=False)


@dataclass
class Cycle:
    """The outcome of one monitoring cycle."""

    report: ScanReport
    diff: ScanDiff
    alert: Alert | None
    deliveries: list[Delivery] = field(default_factory=list)


class Monitor:
    def __init__(
        self,
        store: Store,
        targets: Sequence[str],
        *,
        options: ScanOptions | None = None,
        sinks: Sequence[AlertSink] = (),
        scan: ScanFunction | None = None,
        exclude: Sequence[str] = (),
        allow_large: bool = False,
        min_severity: Severity = Severity.LOW,
        alert_on_first: bool = True,
        include_resolved: bool = True,
    ) -> None:
        if not targets:
            raise UsageError("monitor needs at least one target")
        self.store = store
        self.targets = tuple(targets)
        self.options = options or ScanOptions()
        self.sinks = tuple(sinks)
        self.plan_json: str | None = None
        if scan is None:
            from pacsradar.session import ScanPlan

            # A typo in the scope fails now, not after the first interval. The plan is stored
            # with every cycle's scan, as `scan` stores it.
            plan = ScanPlan.build(targets, exclude, options=self.options, allow_large=allow_large)
            self.plan_json = plan.to_json()
            scan = functools.partial(default_scan, exclude=tuple(exclude), allow_large=allow_large)
        self.scan = scan
        self.min_severity = min_severity
        self.alert_on_first = alert_on_first
        self.include_resolved = include_resolved

    def run_once(self) -> Cycle:
        """Scan (stored as it streams), diff against the previous scan of the scope, alert."""
        observer = StoreObserver(
            self.store,
            scope=self.targets,
            options={
                "monitor": True,
                "only": sorted(self.options.only),
                **({"plan": self.plan_json} if self.plan_json else {}),
            },
        )
        outcome = self.scan(self.targets, self.options, [observer])
        report = _resolve(outcome)
        diff = self.store.diff(report.scan_id)
        alert: Alert | None = None
        if diff.base is not None or self.alert_on_first:
            alert = build_alert(
                diff,
                report=report,
                accepted=self.store.accepted_risks(active_at=datetime.now(UTC)),
                min_severity=self.min_severity,
                include_resolved=self.include_resolved,
            )
        deliveries = dispatch(alert, self.sinks) if alert is not None else []
        log.info(
            "monitor cycle %s: %d new, %d resolved, %d changed, %d regressed",
            report.scan_id,
            len(diff.new),
            len(diff.resolved),
            len(diff.changed),
            len(diff.regressed),
        )
        return Cycle(report=report, diff=diff, alert=alert, deliveries=deliveries)

    def run_forever(
        self,
        every: float,
        *,
        stop: threading.Event | None = None,
        max_cycles: int | None = None,
        on_cycle: Callable[[Cycle], None] | None = None,
        on_error: Callable[[PacsradarError], None] | None = None,
    ) -> int:
        """Run a cycle every ``every`` seconds (start to start) until ``stop`` or ``max_cycles``.

        A cycle that fails (store or scan error) is reported and the schedule goes on.
        Returns the number of cycles run.
        """
        stop = stop or threading.Event()
        cycles = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                cycle = self.run_once()
            except PacsradarError as exc:
                log.error("monitor cycle failed: %s", exc)
                if on_error is not None:
                    on_error(exc)
            else:
                if on_cycle is not None:
                    on_cycle(cycle)
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                break
            stop.wait(max(0.0, every - (time.monotonic() - started)))
        return cycles


def _resolve(outcome: ScanReport | Awaitable[ScanReport]) -> ScanReport:
    if inspect.isawaitable(outcome):

        async def wait() -> ScanReport:
            return await outcome

        return asyncio.run(wait())
    return outcome


__all__ = ["Cycle", "Monitor", "ScanFunction", "default_scan", "parse_interval"]
