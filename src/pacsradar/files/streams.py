"""Metered, bounded streams under the archive audit (:mod:`pacsradar.files.archive`).

Every byte an archive audit reads goes through a :class:`Meter`: compressed bytes in (``raw``),
uncompressed bytes out, members and time, each checked against :class:`ArchiveLimits` on every
read; a bound that trips raises :class:`Bound`, which stops that archive. :class:`ShareFile`
makes a file on a share a seekable stream of ranged reads, so archives on shares are read in
place.
"""

from __future__ import annotations

import io
import multiprocessing
import struct
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from pacsradar.files.options import ArchiveLimits

#: Bytes decompressed before the ratio cap applies (a small member may compress very well).
RATIO_GRACE = 1 << 20
#: Bytes read from a stream at a time.
CHUNK = 1 << 16
_RUN_STEP = 1 << 20


class RunBudget:
    """Uncompressed archive bytes read in this run (one process, a CLI invocation: every archive,
    every worker): a ``multiprocessing.Value`` created before the pool forks, shared by the
    workers; a plain counter when ``shared`` is off. Each process adds its bytes in steps of
    :data:`_RUN_STEP` (one lock per MiB, not per read), so the bound holds to within a MiB per
    worker."""

    def __init__(self, shared: bool = False) -> None:
        self._value: Any = multiprocessing.get_context().Value("q", 0) if shared else None
        self._used = 0
        self._pending = 0

    def take(self, count: int, total: int) -> bool:
        """Account ``count`` bytes; False once more than ``total`` were read in the run."""
        if self._value is None:
            self._used += count
            return self._used <= total
        self._pending += count
        if self._pending < _RUN_STEP and self._used + self._pending <= total:
            return True
        with self._value.get_lock():
            self._value.value += self._pending
            self._used = int(self._value.value)
        self._pending = 0
        return self._used <= total


_RUN: RunBudget | None = None


def run_budget() -> RunBudget:
    """This run's count of uncompressed archive bytes: created once, in the parent before any
    worker forks (workers inherit it, or get it from the pool initializer)."""
    global _RUN
    if _RUN is None:
        _RUN = RunBudget(shared=True)
    return _RUN


def set_run_budget(budget: RunBudget) -> None:
    """Install the parent's budget in a worker process."""
    global _RUN
    _RUN = budget


class Bound(Exception):
    # Control flow, never leaves this module.
    """A bound tripped: stop the current archive (``why`` names the bound)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Unreadable(Exception):
    # Control flow, never leaves this module.
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Meter:
    """What one outermost archive has consumed: compressed bytes in, uncompressed bytes out,
    members, time; every read of either side goes through :meth:`out` / :meth:`raw`."""

    def __init__(self, limits: ArchiveLimits, run: RunBudget) -> None:
        self.limits = limits
        self.run = run
        self.raw_in = 0
        self.out_bytes = 0
        self.members = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def raw(self, count: int) -> None:
        self.raw_in += count
        self._clock()

    def out(self, count: int, compressed: bool) -> None:
        self.out_bytes += count
        if self.out_bytes > self.limits.max_bytes:
            raise Bound("archive_max_bytes")
        if not self.run.take(count, self.limits.max_run_bytes):
            raise Bound("archive_max_run_bytes")
        if (
            compressed
            and self.out_bytes > RATIO_GRACE
            and self.out_bytes > self.limits.max_ratio * max(self.raw_in, 1)
        ):
            raise Bound("archive_max_ratio")
        self._clock()

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise Bound("archive_max_members")
        self._clock()

    def _clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise Bound("archive_max_seconds")


#: What an archive is read from: a file, a share file (:class:`ShareFile`), a member stream.
Source = IO[bytes] | io.RawIOBase


class Metered(io.RawIOBase):
    """A read-only view of ``inner`` that reports every byte read to the meter (``compressed``:
    the bytes come out of a decompressor, so the ratio cap applies). Seeks pass through."""

    def __init__(self, inner: Source, meter: Meter, *, raw: bool, compressed: bool = False) -> None:
        super().__init__()
        self._inner = inner
        self._meter = meter
        self._raw = raw
        self._compressed = compressed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return bool(self._inner.seekable())
        except (OSError, ValueError):
            return False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        data = self._inner.read(len(view)) or b""
        n = len(data)
        view[:n] = data
        if self._raw:
            self._meter.raw(n)
        else:
            self._meter.out(n, self._compressed)
        return n


class Reads(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Prefixed(io.RawIOBase):
    """``head`` (bytes already read) followed by the rest of ``stream``: a stream member is
    sniffed once and then handed on whole, without seeking back."""

    def __init__(self, head: bytes, stream: Reads) -> None:
        super().__init__()
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


class MemberReader:
    """A member's bytes, metered, without a buffer of its own: the header walk reads a few KB,
    and one ``read`` here is one ``read`` of the member (zipfile and tarfile buffer already)."""

    def __init__(self, inner: IO[bytes], meter: Meter, compressed: bool) -> None:
        self._inner = inner
        self._meter = meter
        self._compressed = compressed

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._meter.out(len(data), self._compressed)
        return data


def read_upto(stream: Reads, count: int) -> bytes:
    """Up to ``count`` bytes (fewer only at the end of the stream)."""
    parts: list[bytes] = []
    left = count
    while left > 0:
        data = stream.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (OSError, ValueError):
        return False


_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"


def zip_entry_count(stream: IO[bytes]) -> int | None:
    """Entries the central directory declares (APPNOTE §4.3.16, §4.3.14 for ZIP64), read from
    the end record before ``zipfile`` loads the directory (whose size it would trust)."""
    try:
        end = stream.seek(0, io.SEEK_END)
        tail_len = min(end, 22 + 0xFFFF)
        stream.seek(end - tail_len)
        tail = read_upto(stream, tail_len)
        stream.seek(0)
    except (OSError, ValueError):
        return None
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    (entries,) = struct.unpack_from("<H", tail, at + 10)
    if entries != 0xFFFF or at < 20 or tail[at - 20 : at - 16] != _EOCD64_LOCATOR:
        return int(entries)
    (offset,) = struct.unpack_from("<Q", tail, at - 20 + 8)
    try:
        stream.seek(offset)
        record = read_upto(stream, 56)
        stream.seek(0)
    except (OSError, ValueError):
        return None
    if len(record) < 56 or record[:4] != _EOCD64:
        return None
    (count,) = struct.unpack_from("<Q", record, 32)
    return int(count)


class ShareFile(io.RawIOBase):
    """A file on a share as a seekable stream: each read is a bounded ranged read
    (``read(path, offset, length)``: HTTP Range, FTP REST, SMB offset), so an archive on a share is
    read where its members are, never downloaded whole. ``budget(n)`` accounts the bytes fetched
    and says whether they fit the share's byte bound."""

    def __init__(
        self,
        read: Callable[[str, int, int], tuple[bytes, int | None]],
        path: str,
        size: int,
        budget: Callable[[int], bool],
    ) -> None:
        super().__init__()
        self._read = read
        self._path = path
        self._size = size
        self._pos = 0
        self._budget = budget

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        self._pos = max(0, self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        if not self._budget(want):
            raise Bound("share_max_bytes")
        data, _ = self._read(self._path, self._pos, want)
        n = min(len(data), want)
        view[:n] = data[:n]
        self._pos += n
        return n


__all__ = [
    "CHUNK",
    "RATIO_GRACE",
    "Bound",
    "MemberReader",
    "Meter",
    "Metered",
    "Prefixed",
    "Reads",
    "RunBudget",
    "ShareFile",
    "Source",
    "Unreadable",
    "read_upto",
    "run_budget",
    "seekable",
    "set_run_budget",
    "zip_entry_count",
]
