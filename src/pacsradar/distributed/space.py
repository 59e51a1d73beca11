"""The endpoint space of a scan, cut into small, deterministic, hash-interleaved shards.

A scope is a set of *items*: every host of the host set (IPv4 intervals, then IPv6 intervals,
then names), then the hosts that appear only in pinned (imported ``host:port``) endpoints. An
item carries all its ports, so every port of one host is in one shard and ``--per-host``
holds for the whole cluster.

Items are numbered ``0 .. n-1`` without expanding anything (interval arithmetic). Position ``j``
of the scan order holds item ``(a*j + c) mod n`` with ``a`` coprime to ``n`` and close to
``n/phi`` (golden-ratio stepping, the classic low-discrepancy sequence): a bijection, so every
endpoint is in exactly one shard; consecutive positions land far apart, so each shard spreads
over the whole scope (many subnets, a few addresses each: polite to targets and balanced over
dead space); and the inverse is one multiplication, so the shard of any host is known at once
(``--resume`` groups finished endpoints by shard without enumerating a shard).

Shard ``k`` is positions ``[k*L, (k+1)*L)``; a /8 is never materialised: a shard is walked
lazily where it runs, on the worker.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pacsradar.targets import Scope

#: Endpoints per shard aimed at: at 10,000 endpoints/s per worker a shard is a fraction of a
#: second of probing plus one connect timeout, so a lost worker costs seconds, and a /8 on
#: seven ports is about 400,000 small tasks (submitted lazily, a few at a time).
SHARD_ENDPOINTS = 2048

_PHI = (1 + math.sqrt(5)) / 2


def _multiplier(n: int) -> int:
    """An integer near ``n / phi`` that is coprime to ``n`` (1 for tiny spaces)."""
    if n <= 2:
        return 1
    a = max(1, round(n / _PHI))
    while math.gcd(a, n) != 1:
        a += 1
    return a % n or 1


@dataclass(frozen=True)
class HostSpace:
    """The scope's items, numbered; plain data (ints and strings) that pickles."""

    v4: tuple[tuple[int, int], ...]
    v6: tuple[tuple[int, int], ...]
    names: tuple[str, ...]
    #: hosts scanned only on their pinned ports, with those ports
    pinned_only: tuple[tuple[str, tuple[int, ...]], ...]
    #: host-set hosts with pinned ports beyond the scan's ports
    pinned_extra: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _starts: tuple[int, ...] = ()  # cumulative item index of each v4 then v6 interval

    @classmethod
    def from_scope(cls, scope: Scope, ports: Sequence[int]) -> HostSpace:
        v4, v6, names, pinned_only_hosts, in_host_set = _scope_parts(scope)
        wanted = frozenset(ports)
        extra: dict[str, list[int]] = {}
        only: dict[str, list[int]] = {h: [] for h in pinned_only_hosts}
        for host, port in scope.pinned:
            if in_host_set(host):
                if port not in wanted:
                    extra.setdefault(host, []).append(port)
            else:
                only.setdefault(host, []).append(port)
        starts: list[int] = []
        acc = 0
        for lo, hi in (*v4, *v6):
            starts.append(acc)
            acc += hi - lo + 1
        return cls(
            v4=tuple(v4),
            v6=tuple(v6),
            names=tuple(names),
            pinned_only=tuple((h, tuple(dict.fromkeys(p))) for h, p in only.items()),
            pinned_extra={h: tuple(dict.fromkeys(p)) for h, p in extra.items()},
            _starts=tuple(starts),
        )

    @property
    def _n_addr(self) -> int:
        if not self._starts:
            return 0
        lo, hi = (*self.v4, *self.v6)[-1]
        return self._starts[-1] + hi - lo + 1

    @property
    def size(self) -> int:
        """Number of items (hosts)."""
        return self._n_addr + len(self.names) + len(self.pinned_only)

    def host(self, item: int) -> tuple[str, tuple[int, ...] | None]:
        """Item ``item`` as ``(host, ports)``; ports ``None`` means the scan's ports (+ extras)."""
        n_addr = self._n_addr
        if item < n_addr:
            i = bisect_right(self._starts, item) - 1
            n_v4 = len(self.v4)
            lo = self.v4[i][0] if i < n_v4 else self.v6[i - n_v4][0]
            value = lo + item - self._starts[i]
            if i < n_v4:
                return socket.inet_ntoa(value.to_bytes(4, "big")), None
            return str(ipaddress.IPv6Address(value)), None
        item -= n_addr
        if item < len(self.names):
            return self.names[item], None
        host, ports = self.pinned_only[item - len(self.names)]
        return host, ports

    def item_of(self, host: str) -> int | None:
        """The item number of ``host`` (the inverse of :meth:`host`), or None if not in scope."""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            blocks = self.v4 if ip.version == 4 else self.v6
            offset = 0 if ip.version == 4 else len(self.v4)
            value = int(ip)
            i = bisect_right([lo for lo, _ in blocks], value) - 1
            if i >= 0 and value <= blocks[i][1]:
                return self._starts[offset + i] + value - blocks[i][0]
        if host in self.names:
            return self._n_addr + self.names.index(host)
        for j, (h, _) in enumerate(self.pinned_only):
            if h == host:
                return self._n_addr + len(self.names) + j
        return None


@dataclass(frozen=True)
class Sharding:
    """Cuts ``n`` items into shards of ``per_shard`` items in golden-ratio order."""

    n: int
    per_shard: int
    seed: int = 0

    @classmethod
    def for_space(
        cls, space: HostSpace, n_ports: int, *, seed: int = 0, target: int = SHARD_ENDPOINTS
    ) -> Sharding:
        return cls(n=space.size, per_shard=max(1, target // max(1, n_ports)), seed=seed)

    @property
    def count(self) -> int:
        return -(-self.n // self.per_shard) if self.n else 0

    @property
    def _a(self) -> int:
        return _multiplier(self.n)

    def items(self, shard: int) -> Iterator[int]:
        """The items of ``shard``, lazily: one addition per item."""
        n, a = self.n, self._a
        first = shard * self.per_shard
        last = min(n, first + self.per_shard)
        if first >= last:
            return
        x = (a * first + self.seed) % n
        for _ in range(first, last):
            yield x
            x += a
            if x >= n:
                x -= n

    def shard_of(self, item: int) -> int:
        """Which shard holds ``item`` (inverse permutation: one modular multiplication)."""
        position = (pow(self._a, -1, self.n) * (item - self.seed)) % self.n
        return position // self.per_shard


def _scope_parts(
    scope: Scope,
) -> tuple[
    tuple[tuple[int, int], ...],
    tuple[tuple[int, int], ...],
    tuple[str, ...],
    tuple[str, ...],
    Callable[[str], bool],
]:
    """The interval view of a :class:`Scope` (its own, already minus exclusions)."""
    # One adapter over Scope's internals, so the shard space follows Scope's semantics exactly
    # (same intervals, same hostnames, same pinned-only hosts) without expanding a host.
    return (
        scope._v4,
        scope._v6,
        scope._names,
        scope._pinned_only_hosts,
        scope._in_host_set,
    )


__all__ = ["SHARD_ENDPOINTS", "HostSpace", "Sharding"]
