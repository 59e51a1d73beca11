"""One scan, owned by one object: the :class:`ScanSession` that runs a :class:`ScanPlan`.

* **One owner.** The session resolves the scope's names once (every address re-checked against
  the exclusions: an IP exclusion wins over a hostname target), expands the plan to endpoints,
  skips what a resumed scan already finished, writes the store and feeds the observers.
* **Only the session writes the store.** Workers get endpoints (or the picklable plan) and
  return results; the session records them, plan included, so ``--resume`` restores the plan.
* **Resume is exact or refused.** :meth:`ScanSession.resume` restores the stored plan; a scan
  without one (an older pacsradar, an import), or one started with a ``--link-key`` that is not
  supplied again, is refused with a clear :class:`PlanError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Container, Iterator, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Final

from pacsradar.errors import UsageError
from pacsradar.models import ScanReport
from pacsradar.phi import KeyedHasher
from pacsradar.plan import (
    FAMILIES,
    PLAN_KEY,
    PLAN_VERSION,
    PlanError,
    ScanPlan,
    _canonical,
    _is_ip,
    link_key_id,
    load_imports,
)

if TYPE_CHECKING:
    from pacsradar.engine import Auditor, Engine, Observer
    from pacsradar.pipe import ImportStream, StreamedEndpoints
    from pacsradar.store import Store
    from pacsradar.store.plain import ScanWriter

__all__ = [
    "FAMILIES",
    "PLAN_KEY",
    "PLAN_VERSION",
    "PlanError",
    "Resolver",
    "ScanPlan",
    "ScanSession",
    "link_key_id",
    "load_imports",
    "stored_plan",
    "system_resolver",
]

#: ``async resolver(name) -> addresses``; an empty list means the name did not resolve.
Resolver = Callable[[str], Awaitable[list[str]]]

# RFC 6761 §6.4: "invalid" and names under it never resolve; resolvers SHOULD answer negatively
# at once. Answering here keeps such names off the network entirely (and out of test DNS).
_NEVER_RESOLVES: Final = ("invalid",)


async def system_resolver(name: str, *, within: float = 3.0) -> list[str]:
    """Addresses of ``name`` from the system resolver; ``[]`` when it does not resolve."""
    labels = name.lower().rstrip(".").split(".")
    if labels[-1] in _NEVER_RESOLVES:
        return []
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), within)
    except (OSError, TimeoutError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Resolved:
    """Endpoints with names replaced by their first address; unresolved names dropped."""

    def __init__(self, plan: ScanPlan, addresses: dict[str, str | None], done: Container[tuple[str, int]]):
        self.plan = plan
        self.addresses = addresses
        self.done = done

    def __iter__(self) -> Iterator[tuple[str, int]]:
        # Plain (address, port) pairs: the engine builds a record only for what answers.
        names = self.addresses
        for host, port in self.plan.addresses():
            if names and host in names:
                address = names[host]
                if address is None:
                    continue
                host = address
            if (host, port) in self.done:
                continue
            yield host, port


class ScanSession:
    """Runs one :class:`ScanPlan`: resolves names, expands endpoints, writes the store, reports.

    ``store``: when given, the session records the scan (plan included) as it streams, and is
    the only writer. ``observers`` get every result after the store (progress bars, alerts).
    ``resolver`` resolves hostnames (inject one in tests: no DNS). ``warnings`` collects what
    the user must hear about (names that did not resolve, names excluded after resolution).
    """

    def __init__(
        self,
        plan: ScanPlan,
        *,
        store: ScanWriter | None = None,
        observers: Sequence[Observer] = (),
        scan_id: str | None = None,
        done: AbstractSet[tuple[str, int]] = frozenset(),
        link_key: str | None = None,
        hasher: KeyedHasher | None = None,
        resolver: Resolver | None = None,
        auditors: Sequence[Auditor] | None = None,
        engine_hook: Callable[[Engine], None] | None = None,
        store_options: dict[str, Any] | None = None,
        stream: ImportStream | None = None,
    ) -> None:
        self.plan = plan
        #: ``--import -``: entries read from a pipe while the scan runs (pacsradar.pipe); once
        #: the run ends, ``plan`` holds every entry that arrived
        self.stream = stream
        self._streamed: StreamedEndpoints | None = None
        self.options = plan.options(link_key, hasher=hasher)
        self.store = store
        self.observers = tuple(observers)
        self.scan_id = scan_id
        self.done = done
        self.resolver = resolver
        self.auditors = auditors
        self.engine_hook = engine_hook
        self.store_options = dict(store_options or {})
        self.warnings: list[str] = []
        self.unresolved: list[str] = []
        self.total: int | None = None
        self._engine: Engine | None = None
        self._stop_requested = False
        #: observers dropped by a distributed run (pacsradar.distributed.cluster), as the engine's
        self.cluster_failed: list[str] = []

    # -- resume --------------------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        store: Store,
        scan_id: str,
        *,
        link_key: str | None = None,
        observers: Sequence[Observer] = (),
        resolver: Resolver | None = None,
        auditors: Sequence[Auditor] | None = None,
    ) -> ScanSession:
        """Reopen a stored scan with exactly its stored plan, skipping its finished endpoints.

        Refused (:class:`PlanError`) when the scan was stored without a plan (an older
        pacsradar, an import) or with one this version cannot restore, and when the scan used
        a ``--link-key`` that is not supplied again (its patient hashes would stop linking).
        """
        plan = stored_plan(store, scan_id)
        if plan.link_key_id is not None and link_key is None:
            raise PlanError(
                "this scan was started with --link-key; give the same key again "
                "(--link-key or $PACSRADAR_LINK_KEY) to resume it"
            )
        if plan.link_key_id is None and link_key is not None:
            raise PlanError("this scan was started without --link-key; resume it without one")
        done = store.resume(scan_id)
        return cls(
            plan,
            store=store,
            observers=observers,
            scan_id=scan_id,
            done=done,
            link_key=link_key,
            resolver=resolver,
            auditors=auditors,
        )

    # -- running -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the endpoints in flight, start no new one (the first Ctrl-C)."""
        self._stop_requested = True
        if self.stream is not None:
            self.stream.close()
        if self._engine is not None:
            self._engine.stop()

    def interrupt(self) -> int:
        """Ctrl-C: cancel the endpoints in flight, keep the finished ones; returns how many
        endpoints are finished (their records are in the store and the report)."""
        self._stop_requested = True
        if self.stream is not None:
            self.stream.close()
        if self._engine is None:
            return 0
        self._engine.interrupt()
        return self._engine.done

    @property
    def failed_observers(self) -> list[str]:
        """Observers (the store, alerts...) that raised and were dropped during the run."""
        local = self._engine.failed_observers if self._engine is not None else []
        return [*local, *self.cluster_failed]

    async def resolve_names(self) -> dict[str, str | None]:
        """Resolve every name in the scope once: its address, or ``None`` (warned, skipped).

        A name any of whose addresses is excluded is skipped too: an IP exclusion wins over a
        hostname target (README "Safety").
        """
        names = self.plan.hostnames
        if not names:
            return {}
        timeout = self.plan.limits.connect_timeout
        resolver = self.resolver

        async def default(name: str) -> list[str]:
            return await system_resolver(name, within=timeout)

        resolve = resolver or default
        gate = asyncio.Semaphore(32)

        async def one(name: str) -> tuple[str, str | None]:
            async with gate:
                try:
                    async with asyncio.timeout(timeout + 1.0):
                        found = await resolve(name)
                except Exception:  # a failing resolver (a bug, a hostile answer) costs that name only
                    found = []
            addresses = [_canonical(a) for a in found if _is_ip(a)]
            if not addresses:
                self.unresolved.append(name)
                self.warnings.append(f"{name}: name did not resolve; not scanned")
                return name, None
            if any(self.plan.is_excluded(a) for a in addresses):
                self.warnings.append(f"{name}: resolves to an excluded address; not scanned")
                return name, None
            return name, addresses[0]

        return dict(await asyncio.gather(*(one(n) for n in names)))

    def _store_observer(self) -> Observer | None:
        if self.store is None:
            return None
        from pacsradar.store import StoreObserver

        plan = self.plan
        options: dict[str, Any] = {
            "max_records": plan.max_records,
            "intrusive": plan.intrusive,
            "only": sorted(plan.families),
            **self.store_options,
            PLAN_KEY: plan.to_json(),
        }
        # Addresses only: every endpoint is yielded once (interval arithmetic, pinned imports
        # deduplicated, a resume skips stored ones); a name may resolve to a listed address.
        unique = not plan.hostnames
        streamed = self._streamed
        return StoreObserver(
            self.store,
            scope=plan.targets,
            options=options,
            unique_endpoints=unique,
            plan_update=streamed.plan_update if streamed is not None else None,
        )

    async def run_async(self) -> ScanReport:
        """Resolve, expand and scan; the report covers this run (a resume: its second part)."""
        from pacsradar.engine import Engine
        from pacsradar.scan import default_auditors

        addresses = await self.resolve_names()
        resolved = _Resolved(self.plan, addresses, self.done)
        endpoints: _Resolved | StreamedEndpoints = resolved
        dropped_names = {n for n, a in addresses.items() if a is None}
        if dropped_names and self.stream is None and not any(True for _ in resolved):
            raise UsageError("no target left to scan: " + "; ".join(self.warnings))
        scope = self.plan.scope()
        per_name = len(dropped_names & set(scope.hostnames)) * len(self.plan.ports())
        per_name += sum(1 for h, _ in scope.pinned if h in dropped_names)
        self.total = max(0, self.plan.endpoint_count() - per_name - len(self.done))
        if self.stream is not None:
            from pacsradar.pipe import StreamedEndpoints
            from pacsradar.targets import DEFAULT_MAX_HOSTS

            self.total = None  # unknown until the pipe ends
            self.stream.start()
            endpoints = self._streamed = StreamedEndpoints(
                self.plan,
                resolved,
                self.stream,
                done=self.done,
                max_hosts=None if self.plan.allow_large else DEFAULT_MAX_HOSTS,
            )
        observers = [o for o in (self._store_observer(),) if o is not None]
        observers.extend(self.observers)
        engine = Engine(
            self.options,
            self.auditors if self.auditors is not None else default_auditors(self.options),
            observers,
            scan_id=self.scan_id,
            excluded=self.plan.is_excluded,
        )
        self._engine = engine
        if self._stop_requested:
            engine.stop()
        if self.engine_hook is not None:
            self.engine_hook(engine)
        if self._streamed is not None:
            self._streamed.on_port = engine.add_import_port
        self.scan_id = engine.scan_id
        try:
            return await engine.run(endpoints, total=self.total, scope=self.plan.targets)
        finally:
            if self._streamed is not None:
                self._streamed.stream.close()
                self.plan = self._streamed.plan()
                self.warnings.extend(self._streamed.warnings())

    def run(self, *, handle_sigint: bool = True) -> ScanReport:
        """Run to the end in a new event loop. The first Ctrl-C stops new work; results stay."""

        async def main() -> ScanReport:
            if handle_sigint and threading.current_thread() is threading.main_thread():
                loop = asyncio.get_running_loop()
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signal.SIGINT, self.stop)
            return await self.run_async()

        return asyncio.run(main())


def stored_plan(store: Store, scan_id: str) -> ScanPlan:
    """The plan a stored scan ran with; :class:`PlanError` if it has none or it is unreadable."""
    text = store.scan_options(scan_id).get(PLAN_KEY)
    if not isinstance(text, str):
        raise PlanError(
            "this scan was stored without its scan plan (an older pacsradar or an import), "
            "so it cannot be resumed exactly; start a new scan instead"
        )
    return ScanPlan.from_json(text)
