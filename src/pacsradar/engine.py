"""The asyncio scan engine.

It walks a lazily expanded stream of endpoints with a fixed pool of workers (so a /16 costs no
more memory than a /24), runs each protocol auditor under a per-target deadline, and streams
every :class:`TargetResult` to observers. It never prints: the CLI, the store and alerting are
observers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pacsradar.checks import internal_error, log_internal
from pacsradar.config import ScanOptions
from pacsradar.errors import ConnectError, ConnectTimeout, ScanError
from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    ScanReport,
    TargetResult,
    UnreachableGroup,
    unreachable_attempts,
)
from pacsradar.net import HostLimiter, Net
from pacsradar.outcome import error_state, port_state, scan_report, settled_attempts, untested_reason
from pacsradar.pools import size_pools
from pacsradar.sweep import SYN_LANES, DeadColumns, Gated, Room, Sweep, use_syn

if TYPE_CHECKING:
    from pacsradar.syngate import SynGate

log = logging.getLogger(__name__)


@dataclass
class AuditContext:
    """What an auditor gets: options, the shared connection factory, and what ran before it."""

    options: ScanOptions
    net: Net
    prior: list[TargetResult] = field(default_factory=list)
    #: ``time.monotonic()`` at which the endpoint's ``--deadline`` ends. The engine cancels
    #: coroutines there; work in a thread must watch this itself (a thread cannot be cancelled).
    deadline: float | None = None


class Auditor(Protocol):
    name: str

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        """Whether to audit this endpoint, given earlier auditors' results for it.

        With no ``prior`` result it must depend on the port and the options only: the engine
        decides the TCP gate once per port.
        """
        ...

    async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult: ...


class Observer(Protocol):
    """Gets every result of a scan. An observer may also define ``on_unreachable(group)``
    (:class:`~pacsradar.models.UnreachableGroup`): a distributed scan then hands it a worker's
    refused and silent endpoints as one group instead of one ``on_result`` each (the store
    does; others get ``on_result`` per endpoint)."""

    def on_start(self, scan_id: str, total: int | None) -> None: ...

    def on_result(self, result: TargetResult) -> None: ...

    def on_finish(self, report: ScanReport) -> None: ...


class NullObserver:
    def on_start(self, scan_id: str, total: int | None) -> None:
        return None

    def on_result(self, result: TargetResult) -> None:
        return None

    def on_finish(self, report: ScanReport) -> None:
        return None


def internal_result(endpoint: Endpoint, check: str, exc: BaseException) -> TargetResult:
    """The envelope of a unit of work that raised unexpectedly: an error attempt, never a crash.

    Reachable, so the endpoint stays in the report, and with an error attempt, so the store
    never reads "could not test" as "fixed".
    """
    reason = internal_error(exc)
    return TargetResult(
        endpoint=endpoint,
        reachable=True,
        attempts=(Attempt(check=check, status=AttemptStatus.ERROR, reason=reason),),
        error=reason,
    )


def observer_failed(obs: object, method: str, exc: Exception) -> str:
    """Log an observer that raised (type only; the stack at debug level) and name it for the
    user: ``"Class.hook (ExcType)"``. The caller drops it: it gets no further results."""
    name = type(obs).__name__
    log.error("observer %s failed in %s (%s); it gets no further results", name, method, type(exc).__name__)
    log_internal(log, f"observer {name}.{method}", exc)
    return f"{name}.{method} ({type(exc).__name__})"


def merge_results(endpoint: Endpoint, parts: Sequence[TargetResult], elapsed: float) -> TargetResult:
    """One endpoint may be seen by several auditors (DICOM then web); fold them together."""
    if not parts:
        return TargetResult(endpoint=endpoint, reachable=False, duration_ms=elapsed)
    best = next((p for p in parts if p.service), parts[0])
    return TargetResult(
        endpoint=best.endpoint,
        reachable=any(p.reachable for p in parts),
        service=best.service,
        product=next((p.product for p in parts if p.product), None),
        attempts=tuple(a for p in parts for a in settled_attempts(p, best.service)),
        findings=tuple(f for p in parts for f in p.findings),
        error=next((p.error for p in parts if p.error and not p.reachable), None)
        if not any(p.reachable for p in parts)
        else None,
        started_at=parts[0].started_at,
        duration_ms=elapsed,
    )


def _is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IP address (inet_pton is C; ``ipaddress`` only for zone ids)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _unreachable(endpoint: Endpoint, reason: str, start: float, *, timed_out: bool = False) -> TargetResult:
    """The gate's result for a refused (closed) or timed-out (could not test) endpoint."""
    elapsed = (time.monotonic() - start) * 1000
    return TargetResult(
        endpoint=endpoint,
        reachable=False,
        error=reason,
        attempts=unreachable_attempts(reason, timed_out),
        duration_ms=elapsed,
    )


@runtime_checkable
class EndpointSource(Protocol):
    """Endpoints that arrive while the scan runs; ``None`` once there are no more. Several
    lanes await it at once."""

    async def next_endpoint(self) -> Endpoint | tuple[str, int] | None: ...


class Engine:
    def __init__(
        self,
        options: ScanOptions,
        auditors: Sequence[Auditor],
        observers: Sequence[Observer] = (),
        *,
        scan_id: str | None = None,
        keep_closed: bool = False,
        excluded: Callable[[str], bool] | None = None,
    ) -> None:
        self.options = options
        self.auditors = tuple(auditors)
        self.observers = tuple(observers)
        self.scan_id = scan_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self.keep_closed = keep_closed
        self.excluded = excluded
        self.net = Net(options.limits)
        # Endpoints of one host audited at once; each holds at most two connections at a time.
        self.hosts = HostLimiter(options.limits.per_host)
        #: endpoints in flight (one descriptor each), and endpoints audited at once (a second
        #: descriptor each, pools.size_pools): together within the open-file limit
        self.in_flight, audits = size_pools(options.limits)
        #: whether sweeps of IPv4 addresses go through the SYN gate (pacsradar.syngate)
        self.syn = use_syn(options.limits, self.in_flight)
        if self.syn:
            self.in_flight, audits = size_pools(options.limits, held=False)
        self._syn_gate: SynGate | None = None
        self._syn_room: Room | None = None
        self._audits = asyncio.Semaphore(audits)
        self._stop = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        #: endpoints finished so far (their records went to the observers)
        self.done = 0
        #: observers that raised ("Class.hook (ExcType)"): each is dropped at its first failure
        self.failed_observers: list[str] = []
        self._gate_ports: dict[int, bool] = {}
        self._live_observers = list(self.observers)

    def add_import_port(self, port: int) -> None:
        """A streamed import brought an endpoint on ``port``: the audits try it from now on
        (:attr:`ScanOptions.import_ports`), and its gate decision is taken again."""
        if port not in self.options.import_ports:
            self.options = replace(self.options, import_ports=self.options.import_ports | {port})
            self._gate_ports.pop(port, None)

    def close_gates(self) -> None:
        """Release the gates' descriptors (the connect waiter's epoll set, the raw socket)."""
        self.net.close()
        if self._syn_gate is not None:
            self._syn_gate.close()
            self._syn_gate = None

    def sweep(
        self, on_dead: Callable[[str, int, Gated], None], on_result: Callable[[TargetResult], None]
    ) -> Sweep | None:
        """A :class:`Sweep` for one run or shard, or None when the SYN gate is not in use
        (or cannot open here: the connect gate then does the work, and the reason is logged)."""
        if not self.syn:
            return None
        loop = asyncio.get_running_loop()
        gate = self._syn_gate
        if gate is None or gate.loop is not loop or gate.closed:
            from pacsradar.syngate import SynGate

            try:
                gate = self._syn_gate = SynGate(loop, self.options.limits.connect_timeout)
            except OSError as exc:
                log.warning("SYN gate unavailable (%s); using the connect gate", os.strerror(exc.errno or 0))
                self.syn = False
                return None
            self._syn_room = Room(self.in_flight)
        assert self._syn_room is not None
        return Sweep(
            gate,
            self._syn_room,
            gated=self._sweep_gated,
            token=self.net.token,
            audit=self.audit_pair,
            timeout=self.options.limits.connect_timeout,
            on_dead=on_dead,
            on_result=on_result,
        )

    def _port_gated(self, host: str, port: int) -> bool:
        """:meth:`_gated` from the per-port cache first: no model for a sweep's address."""
        gated = self._gate_ports.get(port)
        return self._gated(Endpoint(host=host, port=port)) if gated is None else gated

    def _sweep_gated(self, host: str, port: int) -> bool:
        """Whether this endpoint's SYN may go through the SYN gate: an IPv4 address and a port
        whose first auditor is gated."""
        return ":" not in host and self._port_gated(host, port)

    async def audit_pair(self, host: str, port: int) -> TargetResult | Gated:
        """:meth:`audit_address` within the host's slot, inside the envelope's last line (a
        bug never loses a lane): a lane of :meth:`run` and a port that answered the SYN."""
        try:
            async with self.hosts.slot(host):
                return await self.audit_address(host, port)
        except Exception as exc:
            log_internal(log, "endpoint audit", exc)
            return internal_result(Endpoint(host=host, port=port), "engine", exc)

    def stop(self) -> None:
        """Ask the engine to finish the endpoints in flight and start no new one."""
        self._stop.set()

    def interrupt(self) -> None:
        """Ctrl-C: start no new endpoint and cancel those in flight (their sockets close).

        Finished endpoints were already handed to the observers; the report keeps them and is
        marked interrupted. Safe to call from a signal handler on the loop, and more than once.
        """
        self._stop.set()
        for task in self._workers:
            task.cancel()

    def _notify(self, method: str, *args: object) -> None:
        """Call one observer hook on every observer; one that raises is dropped, visibly."""
        for obs in tuple(self._live_observers):
            try:
                getattr(obs, method)(*args)
            except Exception as exc:
                self._drop_observer(obs, method, exc)

    def _notify_group(self, group: UnreachableGroup) -> None:
        """Hand a group of dead endpoints to every observer: ``on_unreachable`` where it has
        one, else ``on_result`` per endpoint. One that raises is dropped, as in :meth:`_notify`."""
        for obs in tuple(self._live_observers):
            bulk = getattr(obs, "on_unreachable", None)
            if bulk is None:
                for result in group.results():
                    self._notify_one(obs, "on_result", result)
            else:
                self._notify_one(obs, "on_unreachable", group)

    def _notify_one(self, obs: Observer, method: str, *args: object) -> None:
        if obs not in self._live_observers:
            return
        try:
            getattr(obs, method)(*args)
        except Exception as exc:
            self._drop_observer(obs, method, exc)

    def _drop_observer(self, obs: Observer, method: str, exc: Exception) -> None:
        self._live_observers.remove(obs)
        self.failed_observers.append(observer_failed(obs, method, exc))

    async def _resolve(self, endpoint: Endpoint) -> Endpoint | str:
        """Resolve a hostname target; every address it yields must pass the exclusions again."""
        if _is_ip_literal(endpoint.host):
            return endpoint
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.options.limits.connect_timeout):
                infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError):
            return "name did not resolve"
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            return "name did not resolve"
        if self.excluded is not None and any(self.excluded(a) for a in addresses):
            return "excluded after name resolution"
        return endpoint.model_copy(update={"host": addresses[0]})

    def _gated(self, endpoint: Endpoint) -> bool:
        """Whether the endpoint's first auditor sits behind the TCP gate.

        Decided once per port: before any result, ``wants()`` depends on the port and the
        options only (the :class:`Auditor` contract), and a sweep asks for every endpoint.
        """
        gated = self._gate_ports.get(endpoint.port)
        if gated is None:
            try:
                first = next((a for a in self.auditors if a.wants(endpoint, (), self.options)), None)
            except Exception:
                return False  # a bug in wants(): audit_endpoint reports it as that auditor's part
            gated = first is not None and bool(getattr(first, "gate", False))
            self._gate_ports[endpoint.port] = gated
        return gated

    async def audit_address(self, host: str, port: int) -> TargetResult | Gated:
        """:meth:`audit_endpoint` for an address from the plan (a sweep, local or on a worker).

        A refused or silent port, nearly every endpoint of a sweep, returns ``(error, timed
        out)`` and builds no model at all; the caller groups them
        (:class:`~pacsradar.models.UnreachableGroup`). The record is the same as the local
        engine's: :func:`_unreachable` and ``UnreachableGroup.results`` share their attempts.
        """
        # A name is resolved (async) by audit_endpoint.
        if not self._port_gated(host, port) or not _is_ip_literal(host):
            return await self.audit_endpoint(Endpoint(host=host, port=port))
        try:
            sock = await self.net.probe(host, port)
        except ConnectTimeout as exc:
            return (str(exc), True)
        except ConnectError as exc:
            return (str(exc), False)
        self.net.adopt(host, port, sock)
        return await self.audit_endpoint(Endpoint(host=host, port=port), gated=True)

    async def audit_endpoint(self, endpoint: Endpoint, *, gated: bool = False) -> TargetResult:
        """Audit one endpoint. ``gated``: an IP address whose gate connect already succeeded
        (:meth:`audit_address`; the socket is adopted by ``self.net``)."""
        start = time.monotonic()
        if not gated:
            try:
                resolved = await self._resolve(endpoint)
            except Exception as exc:
                log_internal(log, "name resolution", exc)
                return internal_result(endpoint, "engine.resolve", exc)
            if isinstance(resolved, str):
                return TargetResult(endpoint=endpoint, reachable=False, error=resolved)
            endpoint = resolved
        parts: list[TargetResult] = []
        host, port = endpoint.host, endpoint.port
        if not gated and self._gated(endpoint):
            # The TCP gate: a closed or silent endpoint (nearly all of a sweep) costs one
            # connect and one small result, never an auditor, a check or a stream.
            try:
                self.net.adopt(host, port, await self.net.probe(host, port))
                gated = True
            except ConnectTimeout as exc:
                return _unreachable(endpoint, str(exc), start, timed_out=True)
            except ConnectError as exc:
                return _unreachable(endpoint, str(exc), start)
        deadline = self.options.limits.target_deadline
        # A second descriptor only from the audit pool (pools.size_pools): the gate's socket is this
        # endpoint's first, and a sweep's many dead endpoints keep the rest of the budget.
        try:
            async with self._audits:
                try:
                    async with asyncio.timeout(deadline):
                        for auditor in self.auditors:
                            try:
                                if not auditor.wants(endpoint, parts, self.options):
                                    continue
                                ctx = AuditContext(
                                    options=self.options, net=self.net, prior=parts, deadline=start + deadline
                                )
                                parts.append(await auditor.audit(endpoint, ctx))
                                self.net.discard(host, port)  # a gate socket the auditor did not take
                            except ScanError:
                                raise  # ours, with a message we wrote: handled below
                            except Exception as exc:
                                # A bug in one auditor (discovery included) costs that auditor's part
                                # of this endpoint, never the other auditors or the scan.
                                log_internal(log, f"auditor {auditor.name}", exc)
                                parts.append(internal_result(endpoint, f"{auditor.name}.audit", exc))
                except TimeoutError:
                    # Connects are bounded by the (shorter) connect timeout, so an endpoint that ran
                    # out of time had answered: it is reported as reachable with an error, never dropped.
                    parts.append(
                        TargetResult(
                            endpoint=endpoint,
                            reachable=True,
                            attempts=(
                                Attempt(
                                    check="engine.deadline",
                                    status=AttemptStatus.ERROR,
                                    reason=f"per-target deadline of {deadline:g}s exceeded",
                                ),
                            ),
                            error="deadline exceeded",
                        )
                    )
                except ConnectError as exc:
                    parts.append(TargetResult(endpoint=endpoint, reachable=False, error=str(exc)))
                except ScanError as exc:
                    parts.append(
                        TargetResult(
                            endpoint=endpoint,
                            reachable=True,
                            attempts=(Attempt(check="engine", status=AttemptStatus.ERROR, reason=str(exc)),),
                            error=str(exc),
                        )
                    )
                finally:
                    self.net.discard(host, port)
        finally:
            self.net.discard(host, port)  # also when cancelled while waiting for an audit slot
        merged = merge_results(endpoint, parts, (time.monotonic() - start) * 1000)
        if gated and not merged.reachable:
            # The gate saw the port open; an audit that could not connect again (a server whose
            # accept queue overflowed, one that closed meanwhile) is "open, could not test",
            # never "closed": a closed port would resolve stored findings.
            merged = merged.model_copy(
                update={"reachable": True, "error": merged.error or "the audit could not connect again"}
            )
        return merged

    async def run(
        self,
        endpoints: Iterable[Endpoint | tuple[str, int]] | EndpointSource,
        *,
        total: int | None = None,
        scope: Sequence[str] = (),
    ) -> ScanReport:
        """Audit every endpoint; stream the results to the observers; return the report.

        ``endpoints`` may hold ``(address, port)`` pairs (IP addresses, names already
        resolved): a refused or silent one then costs no model at all. They reach the observers
        in groups (:class:`~pacsradar.models.UnreachableGroup`, ``on_unreachable``) every
        :data:`GROUP_ROWS` endpoints or :data:`GROUP_SECONDS`, and as one ``on_result`` each for
        observers without that hook.
        """
        started = datetime.now(UTC)
        self._notify("on_start", self.scan_id, total)
        # An EndpointSource (a streamed import, pacsradar.pipe) is awaited: its endpoints
        # arrive while the scan runs; an iterable is walked lazily.
        source = endpoints if isinstance(endpoints, EndpointSource) else None
        iterator: Iterator[Endpoint | tuple[str, int]] = (
            iter(()) if isinstance(endpoints, EndpointSource) else iter(endpoints)
        )
        kept: list[TargetResult] = []
        counts = {"done": 0, "open": 0, "closed": 0, "filtered": 0, "error": 0}
        dead = DeadColumns()

        def flush_dead() -> None:
            for group in dead.take():
                if self.keep_closed:
                    kept.extend(group.results())
                self._notify_group(group)

        def record_dead(host: str, port: int, got: Gated) -> None:
            counts["done"] += 1
            self.done += 1
            state = error_state(got[0])
            counts["closed" if state == "unresolved" else state] += 1
            if dead.add(host, port, got):
                flush_dead()

        def record(result: TargetResult) -> None:
            counts["done"] += 1
            self.done += 1
            # nmap's states (outcome.py); "error" counts open endpoints that could not be
            # tested, never silent or refused ports.
            state = port_state(result)
            counts["closed" if state == "unresolved" else state] += 1
            if untested_reason(result) is not None:
                counts["error"] += 1
            if result.reachable or self.keep_closed:
                kept.append(result)
            self._notify("on_result", result)

        sweep = self.sweep(record_dead, record)

        async def worker() -> None:
            while not self._stop.is_set():
                item = next(iterator, None) if source is None else await source.next_endpoint()
                if item is None:
                    return
                if isinstance(item, tuple):
                    host, port = item
                    if sweep is not None and await sweep.offer(host, port):
                        continue
                    got = await self.audit_pair(host, port)
                    if isinstance(got, tuple):
                        record_dead(host, port, got)
                    else:
                        record(got)
                    continue
                async with self.hosts.slot(item.host):
                    try:
                        result = await self.audit_endpoint(item)
                    except Exception as exc:  # the last line of the envelope: never lose a worker
                        log_internal(log, "endpoint audit", exc)
                        result = internal_result(item, "engine", exc)
                record(result)

        # Under the SYN gate a lane only paces SYNs (it does not wait for the answers).
        n_workers = self.in_flight if sweep is None else min(self.in_flight, SYN_LANES)
        if total is not None:
            n_workers = max(1, min(n_workers, total))
        tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
        self._workers = tasks
        interrupted = False
        try:
            # return_exceptions: a cancelled worker (interrupt()) is a result, not a raise.
            await asyncio.gather(*tasks, return_exceptions=True)
            if sweep is not None:
                if self._stop.is_set():
                    sweep.cancel()  # interrupt(): the answers still awaited are not wanted
                await sweep.drain()
        except asyncio.CancelledError:
            # Our own task was cancelled: keep what we have; in-flight endpoints are dropped,
            # not half-reported, and every worker is awaited so no task outlives the scan.
            interrupted = True
            for t in tasks:
                t.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._workers = []
            if sweep is not None:
                sweep.cancel()
            self.close_gates()
            flush_dead()  # what finished reaches the store and the report, Ctrl-C or not
        interrupted = interrupted or self._stop.is_set()
        report = scan_report(
            self.scan_id, self.options, started, scope, counts, total or counts["done"], interrupted, kept
        )
        self._notify("on_finish", report)
        return report


__all__ = [
    "AuditContext",
    "Auditor",
    "EndpointSource",
    "Engine",
    "NullObserver",
    "Observer",
    "internal_result",
    "merge_results",
    "observer_failed",
]
