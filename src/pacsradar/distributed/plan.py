"""What a Dask worker is given: a plain, versioned, picklable plan and one shard number.

The plan holds the scope (intervals and names, exclusions included), the ports, the scan
options with this worker's share of the cluster's limits, and the check selection. No socket,
store, logger or client is inside: it pickles, and every worker re-checks the exclusions
before it connects. The link key travels inside ``ScanOptions.hasher`` (a
:class:`~pacsradar.phi.KeyedHasher`, whose repr hides it), so Dask's own logging of a task
never shows it. Results come back compact and PHI-free: full :class:`TargetResult` records for
the endpoints that answered (counts, keywords and keyed hashes only, as everywhere), and one
small tuple per closed or silent endpoint.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass

from pacsradar.config import ScanOptions
from pacsradar.distributed.space import SHARD_ENDPOINTS, HostSpace, Sharding
from pacsradar.models import Attempt, AttemptStatus, Endpoint, TargetResult
from pacsradar.targets import Scope

PLAN_VERSION = 1

#: A closed or silent endpoint, as a worker returns it: host, port, error, and the check and
#: reason of its error attempt (a timeout is "could not test"), or None for a refused port.
Compact = tuple[str, int, str | None, str | None, str | None]


@dataclass(frozen=True)
class ClusterPlan:
    """A distributed scan: identical on every worker; one shard number selects the work."""

    scan_id: str
    scope: Scope
    ports: tuple[int, ...]
    options: ScanOptions
    space: HostSpace
    sharding: Sharding
    version: int = PLAN_VERSION

    @classmethod
    def build(
        cls,
        scan_id: str,
        scope: Scope,
        options: ScanOptions,
        *,
        seed: int = 0,
        shard_endpoints: int = SHARD_ENDPOINTS,
    ) -> ClusterPlan:
        ports = options.ports()
        space = HostSpace.from_scope(scope, ports)
        return cls(
            scan_id=scan_id,
            scope=scope,
            ports=ports,
            options=options,
            space=space,
            sharding=Sharding.for_space(space, len(ports), seed=seed, target=shard_endpoints),
        )

    @property
    def total(self) -> int:
        """Endpoints in the whole plan (what a local scan of the same scope would probe)."""
        return self.scope.endpoint_count(self.ports)

    def share(self, workers: int) -> ClusterPlan:
        """This plan with ``--rate`` and ``--concurrency`` divided among ``workers`` processes."""
        workers = max(1, workers)
        limits = self.options.limits
        rate = limits.rate / workers if limits.rate > 0 else 0.0
        concurrency = max(1, -(-limits.concurrency // workers)) if limits.concurrency > 0 else 0
        shared = dataclasses.replace(limits, rate=rate, concurrency=concurrency)
        return dataclasses.replace(self, options=dataclasses.replace(self.options, limits=shared))

    def endpoints(self, shard: int, done: frozenset[tuple[str, int]] = frozenset()) -> Iterator[Endpoint]:
        """The shard's endpoints, host by host (all ports of a host together), minus ``done``."""
        wanted = self.ports
        for item in self.sharding.items(shard):
            host, pinned = self.space.host(item)
            ports = pinned if pinned is not None else wanted + self.space.pinned_extra.get(host, ())
            for port in ports:
                if (host, port) not in done:
                    yield Endpoint(host=host, port=port)

    def shard_of(self, host: str) -> int | None:
        item = self.space.item_of(host)
        return None if item is None else self.sharding.shard_of(item)


@dataclass(frozen=True)
class ShardResult:
    """What one shard returns to the client: compact, PHI-free, idempotent by shard."""

    scan_id: str
    shard: int
    worker: str
    endpoints: int
    excluded: int
    results: tuple[TargetResult, ...]
    unreachable: tuple[Compact, ...]


def compact(result: TargetResult) -> Compact | None:
    """A closed or silent endpoint as a small tuple; None if the result must travel whole."""
    if result.reachable or result.findings or len(result.attempts) > 1:
        return None
    ep = result.endpoint
    if result.attempts:
        a = result.attempts[0]
        if a.status is not AttemptStatus.ERROR or a.details:
            return None
        return (ep.host, ep.port, result.error, a.check, a.reason)
    return (ep.host, ep.port, result.error, None, None)


@functools.lru_cache(maxsize=256)
def _error_attempt(check: str, reason: str | None) -> tuple[Attempt, ...]:
    # Frozen and shared: a sweep's timeouts all carry the same few (check, reason) pairs.
    return (Attempt(check=check, status=AttemptStatus.ERROR, reason=reason),)


def expand(item: Compact, worker: str | None = None) -> TargetResult:
    """The client's side of :func:`compact`: the same record the local engine produces."""
    host, port, error, check, reason = item
    attempts = _error_attempt(check, reason) if check else ()
    return TargetResult(
        endpoint=Endpoint(host=host, port=port),
        reachable=False,
        error=error,
        attempts=attempts,
        worker=worker,
    )


__all__ = ["PLAN_VERSION", "ClusterPlan", "Compact", "ShardResult", "compact", "expand"]
