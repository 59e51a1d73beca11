"""The :class:`Scope`: merged address intervals after exclusions, expanded lazily.

Address blocks are kept as merged, sorted ``(first, last)`` integer intervals per IP family: a
/8 costs two integers, overlaps are scanned once, the host count is interval arithmetic and
membership tests are a :mod:`bisect` away. Exclusions are subtracted when the scope is built.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from pacsradar.errors import ScopeTooLargeError, TargetError
from pacsradar.targets.parse import (
    ImportEntry,
    _address,
    _checked_port,
    _hostname,
    _parse_token,
    _show,
    _single_host,
    _spec_file_tokens,
)

DEFAULT_MAX_HOSTS: Final = 65_536
#: Bound on an import file (and on its gunzipped content): large nmap runs fit, a runaway file

#: Inclusive ``(first, last)`` integer address interval.
_Interval = tuple[int, int]


# --------------------------------------------------------------------------------------------
# Interval arithmetic


def _merge(intervals: Iterable[_Interval]) -> tuple[_Interval, ...]:
    """Sort and coalesce overlapping or adjacent intervals, so each address appears once."""
    merged: list[_Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _subtract(keep: Sequence[_Interval], remove: Sequence[_Interval]) -> tuple[_Interval, ...]:
    """``keep`` minus ``remove``, both merged and sorted: one linear pass, nothing expanded."""
    out: list[_Interval] = []
    j = 0
    for lo, hi in keep:
        while j < len(remove) and remove[j][1] < lo:
            j += 1
        cur = lo
        k = j
        while k < len(remove) and remove[k][0] <= hi and cur <= hi:
            rlo, rhi = remove[k]
            if rlo > cur:
                out.append((cur, rlo - 1))
            cur = max(cur, rhi + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def _covers(intervals: Sequence[_Interval], starts: Sequence[int], value: int) -> bool:
    """Whether ``value`` lies in one of the merged ``intervals`` (``starts`` are their firsts)."""
    i = bisect_right(starts, value) - 1
    return i >= 0 and value <= intervals[i][1]


def _size(intervals: Iterable[_Interval]) -> int:
    return sum(hi - lo + 1 for lo, hi in intervals)


# Scope


class _Blocks:
    """Accumulates parsed tokens before merging: intervals per IP family and ordered names."""

    def __init__(self) -> None:
        self.v4: list[_Interval] = []
        self.v6: list[_Interval] = []
        self.names: dict[str, None] = {}

    def add(self, token: str) -> None:
        parsed = _parse_token(token)
        if isinstance(parsed, str):
            self.names.setdefault(parsed)
        else:
            version, lo, hi = parsed
            (self.v4 if version == 4 else self.v6).append((lo, hi))

    def add_specs(self, specs: Sequence[str], what: str) -> None:
        if isinstance(specs, str):
            # A bare str is a Sequence[str] too; iterating it would scan "1", "2", "7", ...
            raise TypeError(f"{what} must be a sequence of strings, not a str")
        for spec in specs:
            for raw in spec.split(","):
                token = raw.strip()
                if not token.startswith("@"):
                    self.add(token)
                    continue
                for number, inner in _spec_file_tokens(token):
                    if inner.startswith("@"):
                        raise TargetError(f"{_show(token[1:])} line {number}: nested @file is not allowed")
                    try:
                        self.add(inner)
                    except TargetError as exc:
                        raise TargetError(f"{_show(token[1:])} line {number}: {exc}") from None


class Scope:
    """The set of hosts (and pinned endpoints) to scan, after exclusions.

    Build it with :func:`parse_scope` or :func:`scope_from_import`. Hosts are yielded IPv4
    first, then IPv6 (each in ascending order, every address once), then hostnames in the order
    given, then hosts that only appear in pinned endpoints.

    Pinned endpoints come from imports that named a port (nmap open ports, masscan, Shodan):
    they are scanned on that port only, in addition to ``hosts() x ports``.
    """

    __slots__ = (
        "_count",
        "_ex_names",
        "_ex_v4",
        "_ex_v4_starts",
        "_ex_v6",
        "_ex_v6_starts",
        "_names",
        "_pinned",
        "_pinned_only_hosts",
        "_v4",
        "_v4_starts",
        "_v6",
        "_v6_starts",
    )

    def __init__(self, include: _Blocks, exclude: _Blocks, pinned: Iterable[ImportEntry]) -> None:
        """Merge, subtract exclusions, and sort out pinned endpoints. Private: use parse_scope."""
        self._ex_v4 = _merge(exclude.v4)
        self._ex_v6 = _merge(exclude.v6)
        self._ex_names = frozenset(exclude.names)
        self._ex_v4_starts = tuple(lo for lo, _ in self._ex_v4)
        self._ex_v6_starts = tuple(lo for lo, _ in self._ex_v6)
        self._v4 = _subtract(_merge(include.v4), self._ex_v4)
        self._v6 = _subtract(_merge(include.v6), self._ex_v6)
        self._v4_starts = tuple(lo for lo, _ in self._v4)
        self._v6_starts = tuple(lo for lo, _ in self._v6)
        self._names = tuple(n for n in include.names if n not in self._ex_names)

        endpoints: dict[tuple[str, int], None] = {}
        extra_hosts: dict[str, None] = {}
        for host, port in pinned:
            if self.is_excluded(host):
                continue
            if port is None:
                if not self._in_host_set(host):
                    extra_hosts.setdefault(host)
            else:
                endpoints.setdefault((host, port))
        # Port-less imported hosts join the host set: scanned on every requested port.
        self._names += tuple(h for h in extra_hosts if _address(h) is None)
        v4_extra = [(int(a), int(a)) for a in map(_address, extra_hosts) if a and a.version == 4]
        v6_extra = [(int(a), int(a)) for a in map(_address, extra_hosts) if a and a.version == 6]
        if v4_extra:
            self._v4 = _merge((*self._v4, *v4_extra))
            self._v4_starts = tuple(lo for lo, _ in self._v4)
        if v6_extra:
            self._v6 = _merge((*self._v6, *v6_extra))
            self._v6_starts = tuple(lo for lo, _ in self._v6)
        self._pinned = tuple(endpoints)
        self._pinned_only_hosts = tuple(dict.fromkeys(h for h, _ in self._pinned if not self._in_host_set(h)))
        self._count = _size(self._v4) + _size(self._v6) + len(self._names) + len(self._pinned_only_hosts)

    # -- queries -------------------------------------------------------------------------------

    def count(self) -> int:
        """Number of distinct hosts to scan after exclusions; interval arithmetic, no iteration.

        A hostname counts as one host even if it resolves to several addresses (no DNS here).
        """
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def hosts(self) -> Iterator[str]:
        """Yield every host once, lazily: a /8 is walked, never stored."""
        yield from self._host_set()
        yield from self._pinned_only_hosts

    def _host_set(self) -> Iterator[str]:
        """Hosts scanned on every requested port (all but the pinned-only ones)."""
        for lo, hi in self._v4:
            for value in range(lo, hi + 1):
                yield str(ipaddress.IPv4Address(value))
        for lo, hi in self._v6:
            for value in range(lo, hi + 1):
                yield str(ipaddress.IPv6Address(value))
        yield from self._names

    def endpoints(self, ports: Sequence[int]) -> Iterator[tuple[str, int]]:
        """Yield ``(host, port)`` host-major, then pinned endpoints not already covered.

        Host-major keeps one host's probes together; the engine's per-host limit (``Limits``)
        spreads load, so no interleaving is needed here. Hostnames are yielded unresolved: the
        engine must call :meth:`is_excluded` on each address it resolves them to.
        """
        wanted = tuple(dict.fromkeys(ports))
        for host in self._host_set():
            for port in wanted:
                yield host, port
        port_set = frozenset(wanted)
        for host, port in self._pinned:
            if port in port_set and self._in_host_set(host):
                continue
            yield host, port

    def endpoint_count(self, ports: Sequence[int]) -> int:
        """How many items :meth:`endpoints` yields with ``ports``, without iterating (progress)."""
        wanted = frozenset(ports)
        host_set = self._count - len(self._pinned_only_hosts)
        extra = sum(1 for host, port in self._pinned if port not in wanted or not self._in_host_set(host))
        return host_set * len(wanted) + extra

    @property
    def hostnames(self) -> tuple[str, ...]:
        """Names in the host set, which the engine will have to resolve (then re-check)."""
        return self._names

    @property
    def pinned(self) -> tuple[tuple[str, int], ...]:
        """Imported ``(host, port)`` endpoints that survived exclusions, in import order."""
        return self._pinned

    @property
    def has_exclusions(self) -> bool:
        """Whether any exclusion was given (without one, :meth:`is_excluded` is always False)."""
        return bool(self._ex_v4 or self._ex_v6 or self._ex_names)

    def is_excluded(self, addr: str) -> bool:
        """Whether ``addr`` (an IP address or hostname) is excluded from scanning.

        Call it on every address learned after parsing (DNS answers, redirects, imports): this is
        how an IP exclusion still wins over a hostname target. A zone ID is ignored (the address
        is excluded on every link), and an IPv4-mapped IPv6 address is also checked against the
        IPv4 exclusions, so a resolver returning ``::ffff:a.b.c.d`` cannot slip past them.
        Raises :class:`TargetError` if ``addr`` is neither an address nor a hostname.
        """
        text = addr.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return _hostname(text) in self._ex_names
        if isinstance(ip, ipaddress.IPv4Address):
            return _covers(self._ex_v4, self._ex_v4_starts, int(ip))
        if _covers(self._ex_v6, self._ex_v6_starts, int(ip)):
            return True
        mapped = ip.ipv4_mapped
        return mapped is not None and _covers(self._ex_v4, self._ex_v4_starts, int(mapped))

    def __contains__(self, host: object) -> bool:
        """Whether ``host`` is scanned on at least one port (host set or pinned endpoint)."""
        if not isinstance(host, str):
            return False
        try:
            canonical = _single_host(host)
        except TargetError:
            return False
        return self._in_host_set(canonical) or canonical in self._pinned_only_hosts

    def _in_host_set(self, host: str) -> bool:
        ip = _address(host)
        if ip is None:
            return host in self._names
        if ip.version == 4:
            return _covers(self._v4, self._v4_starts, int(ip))
        return _covers(self._v6, self._v6_starts, int(ip))

    def __repr__(self) -> str:
        return (
            f"Scope(hosts={self._count}, v4_blocks={len(self._v4)}, v6_blocks={len(self._v6)}, "
            f"names={len(self._names)}, pinned={len(self._pinned)})"
        )


def parse_scope(
    specs: Sequence[str],
    excludes: Sequence[str] = (),
    *,
    max_hosts: int = DEFAULT_MAX_HOSTS,
    allow_large: bool = False,
    imported: Iterable[ImportEntry] = (),
    allow_empty: bool = False,
) -> Scope:
    """Parse target and exclusion specifications into a lazily expanded :class:`Scope`.

    Each spec may be an IPv4/IPv6 address, a CIDR, a range (``127.0.0.1-40``,
    ``127.0.0.1-127.0.1.5``, ``::1-::ff``), a hostname, ``@file`` (one or more specs per line,
    ``#`` comments; no nested ``@``) or a comma-separated list of those. ``excludes`` takes the
    same syntax and always wins. ``imported`` takes :func:`load_import` entries.

    Raises :class:`TargetError` on a malformed token, and :class:`ScopeTooLargeError` when more
    than ``max_hosts`` hosts remain after exclusions and ``allow_large`` is false: a wide scope
    is the typical result of a CIDR typo, so it must be asked for explicitly.
    """
    include = _Blocks()
    include.add_specs(specs, "specs")
    exclude = _Blocks()
    exclude.add_specs(excludes, "excludes")
    entries = [(_single_host(host), _checked_port(port)) for host, port in imported]
    if not specs and not entries and not allow_empty:
        raise TargetError("no targets given")
    scope = Scope(include, exclude, entries)
    count = scope.count()
    if count > max_hosts and not allow_large:
        raise ScopeTooLargeError(
            f"the scope holds {count:,} hosts after exclusions, more than the limit of "
            f"{max_hosts:,}; check the CIDR prefixes for a typo, or pass --allow-large-scope"
        )
    return scope


def scope_from_import(
    entries: Iterable[ImportEntry],
    excludes: Sequence[str] = (),
    *,
    max_hosts: int = DEFAULT_MAX_HOSTS,
    allow_large: bool = False,
) -> Scope:
    """A :class:`Scope` made only of imported entries; exclusions apply as for :func:`parse_scope`.

    Entries with a port become pinned endpoints; entries without one are scanned on the ports
    later passed to :meth:`Scope.endpoints`.
    """
    return parse_scope((), excludes, max_hosts=max_hosts, allow_large=allow_large, imported=entries)
