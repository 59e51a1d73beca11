"""Target scope: what the user is authorised to scan, parsed strictly and expanded lazily.

Why it is built this way:

* **Typos must fail loudly.** A slipped digit (``10.0.0.0/8`` for ``/24``, ``127.0.0.300``) can
  point a scanner at someone else's network. Every token is validated and a bad one raises
  :class:`~pacsradar.errors.TargetError` naming that token (bounded to 100 characters, control
  characters removed), and a scope larger than ``max_hosts`` needs an explicit override
  (:class:`~pacsradar.errors.ScopeTooLargeError`, CLI flag ``--allow-large-scope``).
* **Exclusions always win.** Hospitals exclude life-critical modalities and third-party
  networks. Exclusions are subtracted from the inclusion intervals when the scope is built, so
  an excluded address is never produced, and :meth:`Scope.is_excluded` lets the engine re-check
  addresses it learns later (DNS answers for hostname targets, imported endpoints).
* **Nothing is materialised.** Address blocks are kept as merged, sorted ``(first, last)``
  integer intervals per IP family: a /8 costs two integers, overlaps are scanned once, the host
  count is interval arithmetic and membership tests are a :mod:`bisect` away.
* **No DNS here.** Hostnames are validated (RFC 1123 §2.1 label syntax) and kept as names; the
  engine resolves them at scan time and must then call :meth:`Scope.is_excluded` on every
  address it obtained, because an IP exclusion cannot be matched against a name beforehand.

Endpoints imported from other scanners (:func:`load_import`) enter the same :class:`Scope`
through :func:`parse_scope` (``imported=``) or :func:`scope_from_import`: port-less entries join
the host set, ``(host, port)`` entries become *pinned* endpoints scanned on that port only.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import re
import xml.etree.ElementTree as ET
import zlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

from pacsradar.errors import ScopeTooLargeError, TargetError
from pacsradar.phi import peer_text

__all__ = [
    "DEFAULT_MAX_HOSTS",
    "MAX_IMPORT_BYTES",
    "MAX_TARGET_FILE_BYTES",
    "ImportEntry",
    "Scope",
    "load_import",
    "parse_ports",
    "parse_scope",
    "scope_from_import",
]

#: Hosts a scope may hold before ``allow_large`` is required (a /16).
DEFAULT_MAX_HOSTS: Final = 65_536
#: Bound on an import file (and on its gunzipped content): large nmap runs fit, a runaway file
#: or a decompression bomb does not exhaust memory.
MAX_IMPORT_BYTES: Final = 200 * 1024 * 1024
#: Bound on an ``@file`` target list; each line becomes one interval held in memory.
MAX_TARGET_FILE_BYTES: Final = 32 * 1024 * 1024
#: How much of an offending token an error message may quote.
MAX_SHOWN: Final = 100

#: ``(host, port)`` from an import; ``port`` is ``None`` when the host should get the scan's ports.
ImportEntry = tuple[str, int | None]
#: Inclusive ``(first, last)`` integer address interval.
_Interval = tuple[int, int]

_V4_CHARS = re.compile(r"[0-9.\-]+")
_DIGITS = re.compile(r"[0-9]{1,5}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_BRACKETED = re.compile(r"\[([^\]]*)\](?::([^:]*))?")
# nmap writes a bare ``<!DOCTYPE nmaprun>``; anything richer (internal subset, SYSTEM/PUBLIC
# identifiers) is what entity-expansion and external-entity attacks need, so it is refused.
_BARE_DOCTYPE = re.compile(r"<!DOCTYPE\s+[A-Za-z_][\w.:-]*\s*>")
_DOCTYPE_OR_ENTITY = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_JSON_ARRAY = re.compile(r"\[\s*[{\]]")
_TRAILING_COMMA = re.compile(r",\s*\]\s*\Z")


def _show(token: object) -> str:
    """Quote a user- or file-supplied token for an error message: bounded and de-controlled."""
    return f"'{peer_text(token, MAX_SHOWN)}'"


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


# --------------------------------------------------------------------------------------------
# Token parsing

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> _Address | None:
    """Parse one IP address literal, or ``None`` if ``text`` is not one.

    IPv6 zone IDs (``fe80::1%eth0``) are refused: an interval cannot carry the interface, and a
    zoned address silently losing its zone would scan a different link.
    """
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:
        raise TargetError(f"IPv6 zone IDs are not supported: {_show(text)}")
    return addr


def _hostname(token: str) -> str:
    """Validate a hostname (RFC 1123 §2.1 labels) and return it lower-cased without a final dot.

    Non-ASCII is refused before lower-casing because ``str.lower`` folds look-alikes into ASCII
    (KELVIN SIGN becomes ``k``) and would silently change the target; IDNs must be given in their
    ``xn--`` form. A numeric last label is refused (RFC 3696 §2): it is a mistyped IPv4 address.
    """
    if not token.isascii():
        raise TargetError(f"hostname is not ASCII (give IDNs as xn--): {_show(token)}")
    name = token.lower()
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise TargetError(f"not a valid address, network, range or hostname: {_show(token)}")
    if labels[-1].isdigit():
        raise TargetError(f"invalid IPv4 address: {_show(token)}")
    return name


def _ipv4_block(token: str) -> tuple[int, int]:
    """``a.b.c.d``, ``a.b.c.d-e`` (last-octet range) or ``a.b.c.d-w.x.y.z`` (full range)."""
    left, dash, right = token.partition("-")
    first = _address(left)
    if not isinstance(first, ipaddress.IPv4Address):
        raise TargetError(f"invalid IPv4 address or range: {_show(token)}")
    lo = int(first)
    if not dash:
        return lo, lo
    if _DIGITS.fullmatch(right) and int(right) <= 255:
        hi = (lo & ~0xFF) | int(right)
    else:
        last = _address(right)
        if not isinstance(last, ipaddress.IPv4Address):
            raise TargetError(f"invalid IPv4 range: {_show(token)}")
        hi = int(last)
    if hi < lo:
        raise TargetError(f"range ends before it starts: {_show(token)}")
    return lo, hi


def _ipv6_block(token: str) -> tuple[int, int]:
    """``addr``, ``[addr]`` or ``addr-addr`` (IPv6 ranges need two full addresses)."""
    if token.startswith("[") and token.endswith("]"):
        token = token[1:-1]
    left, dash, right = token.partition("-")
    first = _address(left)
    last = _address(right) if dash else first
    if not isinstance(first, ipaddress.IPv6Address) or not isinstance(last, ipaddress.IPv6Address):
        raise TargetError(f"invalid IPv6 address or range: {_show(token)}")
    if int(last) < int(first):
        raise TargetError(f"range ends before it starts: {_show(token)}")
    return int(first), int(last)


def _parse_token(token: str) -> tuple[int, int, int] | str:
    """One target token to ``(ip_version, first, last)`` or to a normalised hostname.

    The shape decides the grammar, so that a typo is reported as the thing it resembles:
    a ``/`` means CIDR, only digits/dots/dashes mean IPv4, a ``:`` means IPv6 (hostnames can
    contain none of these), anything else must be a hostname.
    """
    if not token:
        raise TargetError("empty target specification")
    if "%" in token:
        raise TargetError(f"IPv6 zone IDs are not supported: {_show(token)}")
    if "/" in token:
        try:
            # strict=False accepts host bits (``192.0.2.7/24``), as nmap does.
            net = ipaddress.ip_network(token, strict=False)
        except ValueError:
            raise TargetError(f"invalid CIDR network: {_show(token)}") from None
        return net.version, int(net.network_address), int(net.broadcast_address)
    if _V4_CHARS.fullmatch(token):
        return (4, *_ipv4_block(token))
    if ":" in token:
        return (6, *_ipv6_block(token))
    left = token.partition("-")[0]
    if "-" in token and _address(left) is not None:
        raise TargetError(f"invalid address range: {_show(token)}")
    return _hostname(token)


def _single_host(token: str) -> str:
    """Validate one host (address or hostname, not a block) and return its canonical text."""
    token = token.strip()
    if "/" in token:
        raise TargetError(f"expected one host, not a network: {_show(token)}")
    parsed = _parse_token(token)
    if isinstance(parsed, str):
        return parsed
    version, lo, hi = parsed
    if hi != lo or "-" in token:
        raise TargetError(f"expected one host, not a range: {_show(token)}")
    return str(ipaddress.IPv4Address(lo) if version == 4 else ipaddress.IPv6Address(lo))


def _port(text: str) -> int:
    text = text.strip()
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise TargetError(f"invalid port (1-65535): {_show(text)}")
    return int(text)


def parse_ports(spec: str) -> tuple[int, ...]:
    """Parse ``104,11112,4000-4010`` into ports, first occurrence order kept, duplicates dropped.

    Order is kept because users list the likeliest DICOM ports first and the engine probes in
    the order given.
    """
    ports: dict[int, None] = {}
    for raw in spec.split(","):
        part = raw.strip()
        match = _PORT_RANGE.fullmatch(part)
        if not part or match is None:
            raise TargetError(f"invalid port or port range: {_show(part)}")
        lo = _port(match.group(1))
        hi = _port(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise TargetError(f"port range ends before it starts: {_show(part)}")
        for port in range(lo, hi + 1):
            ports.setdefault(port)
    return tuple(ports)


# --------------------------------------------------------------------------------------------
# Bounded file reading


def _read_bounded(path: Path, limit: int, *, gunzip: bool) -> str:
    """Read a UTF-8 text file of at most ``limit`` bytes (after gunzip when allowed).

    The size is checked before and while reading: ``stat`` can lie for pipes and /proc files, and
    a gzip member can inflate a thousandfold.
    """
    shown = _show(str(path))
    try:
        if path.stat().st_size > limit:
            raise TargetError(f"{shown} is larger than {limit:,} bytes")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise TargetError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    if gunzip and data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(limit + 1)
        except (OSError, EOFError, zlib.error):
            raise TargetError(f"{shown} is not a valid gzip file") from None
    if len(data) > limit:
        raise TargetError(f"{shown} is larger than {limit:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TargetError(f"{shown} is not UTF-8 text") from None


def _spec_file_tokens(ref: str) -> Iterator[tuple[int, str]]:
    """``(line number, token)`` of an ``@file``: ``#`` comments, blank lines skipped.

    Tokens may be separated by commas or whitespace within a line, like ``nmap -iL``.
    """
    name = ref[1:]
    if not name:
        raise TargetError("'@' must be followed by a file name")
    text = _read_bounded(Path(name), MAX_TARGET_FILE_BYTES, gunzip=False)
    for number, line in enumerate(text.splitlines(), start=1):
        for token in re.split(r"[,\s]+", line.partition("#")[0]):
            if token:
                yield number, token


# --------------------------------------------------------------------------------------------
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
    if not specs and not entries:
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


def _checked_port(port: int | None) -> int | None:
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise TargetError(f"invalid port (1-65535): {_show(port)}")
    return port


# --------------------------------------------------------------------------------------------
# Imports from other scanners


def load_import(path: Path, *, max_bytes: int = MAX_IMPORT_BYTES) -> list[ImportEntry]:
    """Read endpoints found by another tool, detecting the format from the content.

    Supported: nmap XML (``-oX``; hosts with status ``up``, TCP ports with state ``open``; a host
    without a ``<ports>`` element, as from ``-sn``, yields ``(host, None)``), masscan JSON
    (``-oJ``, also as JSON lines) and list (``-oL``) output, Shodan JSON lines (``ip_str`` and
    ``port``; gzip-compressed downloads too), and a plain list of ``host``, ``host:port`` or
    ``[v6]:port`` lines with ``#`` comments. Only TCP is kept: pacsradar speaks TCP protocols.

    The file is untrusted input: size is bounded, every host and port is validated, XML with any
    DOCTYPE beyond nmap's bare one or any ENTITY is refused (entity expansion, XXE). Entries are
    deduplicated in file order. Exclusions are applied later, by the :class:`Scope`.
    """
    text = _read_bounded(path, max_bytes, gunzip=True)
    head = text.lstrip()
    if head.startswith("<"):
        entries = _from_nmap_xml(text)
    elif _JSON_ARRAY.match(head):  # not "[" alone: a plain list may start with "[::1]:104"
        entries = _from_masscan_json(text)
    elif head.startswith("{"):
        entries = _from_json_lines(text)
    elif _looks_like_masscan_list(text):
        entries = _from_masscan_list(text)
    else:
        entries = _from_plain_list(text)
    return list(dict.fromkeys(entries))


def _at_line(number: int, exc: TargetError) -> TargetError:
    return TargetError(f"line {number}: {exc}")


class _NmapTarget:
    """Streaming ElementTree target for nmap ``-oX``: keeps only what it needs, no tree.

    Only ``address``/``status`` directly under ``host`` count: nmap ≥ 7.80 also writes
    ``<hosthint>`` elements with their own addresses for hosts that may be down.
    """

    def __init__(self) -> None:
        self.entries: list[ImportEntry] = []
        self.root: str | None = None
        self._stack: list[str] = []
        self._reset_host()

    def _reset_host(self) -> None:
        self._up = False
        self._addr: str | None = None
        self._saw_ports = False
        self._open: list[int] = []
        self._port: int | None = None
        self._port_open = False

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        parent = self._stack[-1] if self._stack else None
        self._stack.append(tag)
        if self.root is None:
            self.root = tag
        if tag == "host" and parent == self.root:
            self._reset_host()
        elif parent == "host" and tag == "status":
            self._up = attrs.get("state") == "up"
        elif parent == "host" and tag == "address":
            if attrs.get("addrtype") in ("ipv4", "ipv6") and self._addr is None:
                self._addr = _single_host(attrs.get("addr", ""))
        elif parent == "host" and tag == "ports":
            self._saw_ports = True
        elif parent == "ports" and tag == "port":
            proto_ok = attrs.get("protocol", "tcp") == "tcp"
            self._port = _port(attrs.get("portid", "")) if proto_ok else None
            self._port_open = False
        elif parent == "port" and tag == "state":
            self._port_open = attrs.get("state") == "open"

    def end(self, tag: str) -> None:
        self._stack.pop()
        parent = self._stack[-1] if self._stack else None
        if tag == "port" and parent == "ports":
            if self._port is not None and self._port_open:
                self._open.append(self._port)
            self._port = None
        elif tag == "host" and parent == self.root and self._up and self._addr is not None:
            if self._saw_ports:
                self.entries.extend((self._addr, port) for port in self._open)
            else:
                self.entries.append((self._addr, None))

    def close(self) -> None:
        return None


def _from_nmap_xml(text: str) -> list[ImportEntry]:
    for match in _DOCTYPE_OR_ENTITY.finditer(text):
        if not _BARE_DOCTYPE.match(text, match.start()):
            raise TargetError("XML import refused: it declares a DTD or entities")
    target = _NmapTarget()
    # Safe without defusedxml: DTDs and entities were refused above, and ElementTree's expat
    # never fetches external resources. The streaming target keeps no tree in memory.
    parser: ET.XMLParser[None] = ET.XMLParser(target=target)  # noqa: S314
    try:
        parser.feed(text)
        parser.close()
    except ET.ParseError as exc:
        raise TargetError(f"malformed XML import: {exc}") from None
    if target.root != "nmaprun":
        raise TargetError("XML import is not nmap -oX output (root element is not nmaprun)")
    return target.entries


def _json_port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TargetError(f"invalid port (1-65535): {_show(value)}")
    return _port(str(value))


def _json_host(value: object) -> str:
    if not isinstance(value, str):
        raise TargetError(f"invalid host: {_show(value)}")
    return _single_host(value)


def _from_masscan_object(obj: dict[str, object]) -> list[ImportEntry]:
    """One masscan record: ``{ip, ports:[{port, proto, status}]}`` or ndjson ``{ip, port}``."""
    if "ip" not in obj:
        return []  # masscan's trailing {"finished": 1} and similar bookkeeping records
    host = _json_host(obj["ip"])
    records = obj.get("ports", [obj])
    if not isinstance(records, list):
        raise TargetError("masscan record has a 'ports' value that is not a list")
    out: list[ImportEntry] = []
    for record in records:
        if not isinstance(record, dict):
            raise TargetError("masscan port entry is not an object")
        status = record.get("status")
        data = record.get("data")
        if status is None and isinstance(data, dict):
            status = data.get("status")
        if status == "open" and record.get("proto", "tcp") == "tcp":
            out.append((host, _json_port(record.get("port"))))
    return out


def _from_masscan_json(text: str) -> list[ImportEntry]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        try:  # masscan releases before 1.0.6 left a comma before the closing bracket
            doc = json.loads(_TRAILING_COMMA.sub("]", text))
        except json.JSONDecodeError as exc:
            raise TargetError(f"malformed JSON import: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(doc, list):
        raise TargetError("JSON import is not a list of masscan records")
    out: list[ImportEntry] = []
    for obj in doc:
        if not isinstance(obj, dict):
            raise TargetError("JSON import holds an element that is not an object")
        out.extend(_from_masscan_object(obj))
    return out


def _from_json_lines(text: str) -> list[ImportEntry]:
    """JSON lines: Shodan (``ip_str``, ``port``, ``transport``) or masscan records."""
    out: list[ImportEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TargetError(f"line {number}: malformed JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise TargetError(f"line {number}: JSON value is not an object")
        try:
            if "ip_str" in obj:
                if obj.get("transport", "tcp") == "tcp":
                    out.append((_json_host(obj["ip_str"]), _json_port(obj.get("port"))))
            else:
                out.extend(_from_masscan_object(obj))
        except TargetError as exc:
            raise _at_line(number, exc) from None
    return out


def _meaningful_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.partition("#")[0].strip()
        if content:
            yield number, content


def _looks_like_masscan_list(text: str) -> bool:
    """masscan ``-oL``: ``#masscan`` header, or a first line like ``open tcp 104 <ip> <ts>``."""
    if text.lstrip().startswith("#masscan"):
        return True
    for _number, line in _meaningful_lines(text):
        fields = line.split()
        return len(fields) >= 4 and fields[0] in ("open", "closed", "banner")
    return False


def _from_masscan_list(text: str) -> list[ImportEntry]:
    out: list[ImportEntry] = []
    for number, line in _meaningful_lines(text):
        fields = line.split()
        if fields[0] != "open":
            continue  # "banner" and "closed" lines carry no new open port
        if len(fields) < 4:
            raise TargetError(f"line {number}: expected 'open <proto> <port> <ip> ...'")
        if fields[1] != "tcp":
            continue
        try:
            out.append((_single_host(fields[3]), _port(fields[2])))
        except TargetError as exc:
            raise _at_line(number, exc) from None
    return out


def _from_plain_list(text: str) -> list[ImportEntry]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` per line; a bare IPv6 has no port."""
    out: list[ImportEntry] = []
    for number, line in _meaningful_lines(text):
        try:
            bracketed = _BRACKETED.fullmatch(line)
            if bracketed is not None:
                host, port = bracketed.group(1), bracketed.group(2)
                if host and ":" not in host:
                    raise TargetError(f"brackets are for IPv6 addresses: {_show(line)}")
            elif line.count(":") == 1:
                host, port = line.split(":")
            else:
                host, port = line, None
            out.append((_single_host(host), None if port is None else _port(port)))
        except TargetError as exc:
            raise _at_line(number, exc) from None
    return out
