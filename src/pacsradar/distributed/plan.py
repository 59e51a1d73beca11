"""What a Dask worker is given: a plain, versioned, picklable plan and one shard number.

The plan holds the scope (intervals and names, exclusions included), the ports, the scan
options with this worker's share of the cluster's limits, and the check selection. No socket,
store, logger or client is inside: it pickles, and every worker re-checks the exclusions
before it connects. The link key travels inside ``ScanOptions.hasher`` (a
:class:`~pacsradar.phi.KeyedHasher`, whose repr hides it), so Dask's own logging of a task
never shows it. Results come back compact and PHI-free: full :class:`TargetResult` records for
the endpoints that answered (counts, keywords and keyed hashes only, as everywhere), and the
closed or silent endpoints as a few columnar groups (:class:`UnreachableGroup`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from pacsradar.config import ScanOptions
from pacsradar.distributed.space import SHARD_ENDPOINTS, HostSpace, Sharding
from pacsradar.models import Endpoint, TargetResult, UnreachableGroup
from pacsradar.targets import Scope

PLAN_VERSION = 1


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

    def addresses(
        self, shard: int, done: AbstractSet[tuple[str, int]] = frozenset()
    ) -> Iterator[tuple[str, int]]:
        """The shard's (host, port) pairs, host by host (all ports of a host together), minus
        ``done``: plain tuples, so a dead endpoint never costs a model on the worker."""
        wanted = self.ports
        extra = self.space.pinned_extra
        for item in self.sharding.items(shard):
            host, pinned = self.space.host(item)
            ports = pinned if pinned is not None else (wanted + extra[host] if host in extra else wanted)
            for port in ports:
                if not done or (host, port) not in done:
                    yield host, port

    def endpoints(self, shard: int, done: AbstractSet[tuple[str, int]] = frozenset()) -> Iterator[Endpoint]:
        """:meth:`addresses` as :class:`Endpoint` records."""
        for host, port in self.addresses(shard, done):
            yield Endpoint(host=host, port=port)

    def shard_of(self, host: str) -> int | None:
        item = self.space.item_of(host)
        return None if item is None else self.sharding.shard_of(item)


@dataclass(frozen=True)
class ShardResult:
    """What one shard returns to the client: compact, PHI-free, idempotent by shard.

    ``results``: the endpoints that answered, whole (counts, keywords, keyed hashes only, as
    everywhere). ``unreachable``: the refused and silent ones, grouped by error as columns.
    """

    scan_id: str
    shard: int
    worker: str
    endpoints: int
    excluded: int
    results: tuple[TargetResult, ...]
    unreachable: tuple[UnreachableGroup, ...]


__all__ = ["PLAN_VERSION", "ClusterPlan", "ShardResult"]
