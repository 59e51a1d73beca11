"""Target tokens: addresses, networks, ranges, hostnames, ports and ``@file`` lists, parsed strictly.

Every token is validated; a bad one raises :class:`~pacsradar.errors.TargetError` naming that
token (bounded to :data:`MAX_SHOWN` characters, control characters removed).
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from pacsradar.errors import TargetError
from pacsradar.phi import peer_text

#: Bound on an ``@file`` target list; each line becomes one interval held in memory.
MAX_TARGET_FILE_BYTES: Final = 32 * 1024 * 1024
#: How much of an offending token an error message may quote.
MAX_SHOWN: Final = 100

#: ``(host, port)`` from an import; ``port`` is ``None`` when the host should get the scan's ports.
ImportEntry = tuple[str, int | None]

_V4_CHARS = re.compile(r"[0-9.\-]+")
_DIGITS = re.compile(r"[0-9]{1,5}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")


def _show(token: object) -> str:
    """Quote a user- or file-supplied token for an error message: bounded and de-controlled."""
    return f"'{peer_text(token, MAX_SHOWN)}'"


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


def _checked_port(port: int | None) -> int | None:
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise TargetError(f"invalid port (1-65535): {_show(port)}")
    return port
