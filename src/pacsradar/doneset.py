"""The endpoints a resumed scan has already finished, kept compactly.

A resumed sweep skips what its first run recorded; at internet scale that is millions of
endpoints. As ``(host, port)`` tuples of strings they cost about 170 bytes each; here an IPv4
endpoint is one integer (address << 16 | port) in a set, about 60 bytes, and a membership test
parses the dotted quad with ``inet_pton`` (strict: no shorthand forms). Anything else (IPv6,
names) stays a tuple. Standard library only: it crosses to Dask workers by pickle.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Set

__all__ = ["DoneSet"]


_pton = socket.inet_pton
_V4 = socket.AF_INET


class DoneSet(Set[tuple[str, int]]):
    """A set of ``(host, port)`` pairs; IPv4 ones stored as integers."""

    __slots__ = ("_other", "_v4")

    def __init__(self, pairs: Iterable[tuple[str, int]] = ()) -> None:
        self._v4: set[int] = set()
        self._other: set[tuple[str, int]] = set()
        for host, port in pairs:
            self.add(host, port)

    def add(self, host: str, port: int) -> None:
        try:
            self._v4.add(int.from_bytes(_pton(_V4, host), "big") << 16 | port)
        except OSError:  # not a dotted quad: IPv6, a name
            self._other.add((host, port))

    def __contains__(self, item: object) -> bool:
        # Inlined (no helper call): a resumed sweep asks once per endpoint of the scope.
        if type(item) is not tuple or len(item) != 2:
            return False
        host, port = item
        try:
            return (int.from_bytes(_pton(_V4, host), "big") << 16 | port) in self._v4
        except OSError:
            return item in self._other
        except (TypeError, ValueError):
            return False

    def __len__(self) -> int:
        return len(self._v4) + len(self._other)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        ntoa = socket.inet_ntoa
        for key in self._v4:
            yield ntoa((key >> 16).to_bytes(4, "big")), key & 0xFFFF
        yield from self._other

    def __getstate__(self) -> tuple[set[int], set[tuple[str, int]]]:
        return self._v4, self._other

    def __setstate__(self, state: tuple[set[int], set[tuple[str, int]]]) -> None:
        self._v4, self._other = state
