"""Archives in the file audit: ZIP, gzip, bzip2, xz and tar (plain or compressed), streamed.

Exports are archives: a PACS "download study" is a ZIP, viewers export ZIP with a DICOMDIR,
research sets travel as tar.gz. Every member is read like a file: the smallest prefix that holds
its header, walked by :func:`pacsradar.files.header.parse` (pydicom for what the walker leaves
alone), counted into the same :class:`Tally`. Nothing is extracted to disk and no archive is held
in memory: ZIP members are opened through the central directory (PKWARE APPNOTE §4.3.12) and
only their first bytes are inflated; tar streams (POSIX.1-2001 ustar) are read in order, their
compression undone on the fly.

Hard bounds (:class:`ArchiveLimits`, each configurable, documented in ``--help``), checked on
every read: uncompressed bytes per archive and per run (all archives, all workers), a
compression-ratio cap once past 1 MiB (zip bombs), members per archive, nesting depth (an archive
inside an archive, at most 2 levels) and seconds per archive. A bound that trips stops that
archive; what was counted stays, and the bound is named in ``truncated_by``. Encrypted members
(ZIP traditional or AES encryption, APPNOTE §4.4.4 bit 0 and §7) are counted as "could not
read", never guessed at.

Member names can carry patient names: a member's path token is ``archive!member`` (nested:
``a.zip!b.tar.gz!IM1``) only with ``--show-paths``, else the keyed hash of that string.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import multiprocessing
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any, Protocol, cast

from pacsradar.errors import ScanError
from pacsradar.files import header as hdrmod
from pacsradar.files.fallback import parse_with_pydicom
from pacsradar.files.options import ArchiveLimits
from pacsradar.files.tally import Tally
from pacsradar.phi import KeyedHasher, peer_text

#: Bytes decompressed before the ratio cap applies (a small member may compress very well).
RATIO_GRACE = 1 << 20
#: Bytes read from a stream at a time when a tar member's data is skipped.
_CHUNK = 1 << 16
_TAR_BLOCK = 512
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


class _Bound(Exception):
    # Control flow, never leaves this module.
    """A bound tripped: stop the current archive (``why`` names the bound)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Unreadable(Exception):
    # Control flow, never leaves this module.
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Meter:
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
            raise _Bound("archive_max_bytes")
        if not self.run.take(count, self.limits.max_run_bytes):
            raise _Bound("archive_max_run_bytes")
        if (
            compressed
            and self.out_bytes > RATIO_GRACE
            and self.out_bytes > self.limits.max_ratio * max(self.raw_in, 1)
        ):
            raise _Bound("archive_max_ratio")
        self._clock()

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise _Bound("archive_max_members")
        self._clock()

    def _clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Bound("archive_max_seconds")


#: What an archive is read from: a file, a share file (:class:`ShareFile`), a member stream.
_Source = IO[bytes] | io.RawIOBase


class _Metered(io.RawIOBase):
    """A read-only view of ``inner`` that reports every byte read to the meter (``compressed``:
    the bytes come out of a decompressor, so the ratio cap applies). Seeks pass through."""

    def __init__(self, inner: _Source, meter: _Meter, *, raw: bool, compressed: bool = False) -> None:
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


class _Reads(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Prefixed(io.RawIOBase):
    """``head`` (bytes already read) followed by the rest of ``stream``: a stream member is
    sniffed once and then handed on whole, without seeking back."""

    def __init__(self, head: bytes, stream: _Reads) -> None:
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


class _MemberReader:
    """A member's bytes, metered, without a buffer of its own: the header walk reads a few KB,
    and one ``read`` here is one ``read`` of the member (zipfile and tarfile buffer already)."""

    def __init__(self, inner: IO[bytes], meter: _Meter, compressed: bool) -> None:
        self._inner = inner
        self._meter = meter
        self._compressed = compressed

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._meter.out(len(data), self._compressed)
        return data


def _read_upto(stream: _Reads, count: int) -> bytes:
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


class ArchiveAuditor:
    """Audits archives into one tally. One instance per worker batch or share walk."""

    def __init__(
        self,
        tally: Tally,
        limits: ArchiveLimits,
        run: RunBudget,
        *,
        header_read: int,
        max_header_bytes: int,
        show_paths: bool,
        hasher: KeyedHasher,
    ) -> None:
        self.tally = tally
        self.limits = limits
        self.run = run
        self.header_read = header_read
        self.max_header_bytes = max_header_bytes
        self.show_paths = show_paths
        self.hasher = hasher
        self.counts = hdrmod.Counts()

    # ---- entry points ---------------------------------------------------------------------

    def audit_stream(self, raw: _Source, size: int, kind: str, name: str, *, chunk: int = _CHUNK) -> None:
        """Audit the archive ``raw`` (positioned at 0; seekable for ZIP) of ``size`` bytes, whose
        first bytes the walker recognised as ``kind``. ``name`` is its path token source (the
        relative path, or a share path): never rendered unless paths are shown. ``chunk`` is the
        read size on ``raw`` (small for a local ZIP, whose members are read where they are)."""
        tally = self.tally
        meter = _Meter(self.limits, self.run)
        metered = io.BufferedReader(_Metered(raw, meter, raw=True), chunk)
        try:
            self._guarded(metered, size, kind, name, meter)
        finally:
            # What was read of the archive itself: compressed bytes, as they are on disk.
            tally.bytes_read += meter.raw_in
            # Members counted in the walker's own counts (see _member), folded in once.
            tally.add_counts(self.counts)
            self.counts = hdrmod.Counts()

    def _guarded(self, metered: IO[bytes], size: int, kind: str, name: str, meter: _Meter) -> None:
        tally = self.tally
        try:
            self._archive(metered, size, kind, [name], 1, meter)
            tally.archives += 1
        except _Bound as bound:
            tally.archives += 1
            _mark(tally, bound.why)
        except _Unreadable as bad:
            tally.archive_unreadable[bad.why] += 1
        except ScanError:  # a share read failed (its message is ours, not the peer's)
            tally.archive_unreadable["read-error"] += 1
        except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError):
            tally.archive_unreadable["corrupt"] += 1
        except Exception:  # hostile input must not stop the audit; nothing of it is logged
            tally.archive_unreadable["error"] += 1

    # ---- one archive level ------------------------------------------------------------------

    def _archive(
        self, stream: IO[bytes], size: int | None, kind: str, chain: list[str], depth: int, meter: _Meter
    ) -> None:
        if kind == "zip":
            self._zip(stream, size, chain, depth, meter)
            return
        if kind == "tar":
            self._tar(stream, chain, depth, meter, stream_mode=not _seekable(stream))
            return
        decompressed = self._decompressor(kind, stream)
        out = io.BufferedReader(_Metered(decompressed, meter, raw=False, compressed=True), _CHUNK)
        try:
            head = out.peek(_TAR_BLOCK)[:_TAR_BLOCK]
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise _Unreadable("corrupt") from exc
        if len(head) >= 262 and head[257:262] == b"ustar":
            self._tar(out, chain, depth, meter, stream_mode=True)
            return
        # A single compressed file (zipMR.gz): one member, named after the archive.
        leaf = chain[-1].rsplit("/", 1)[-1]
        stem = leaf.rsplit(".", 1)[0] if "." in leaf else leaf
        meter.member()
        self.tally.archive_members += 1
        self._member(out, None, [*chain, stem], depth, meter)

    def _decompressor(self, kind: str, stream: IO[bytes]) -> IO[bytes]:
        opened: Any
        if kind == "gzip":
            opened = gzip.GzipFile(fileobj=stream, mode="rb")
        elif kind == "bzip2":
            opened = bz2.BZ2File(stream, mode="rb")
        elif kind == "xz":
            opened = lzma.LZMAFile(stream, mode="rb")  # noqa: SIM115 - closed with its archive
        else:
            raise _Unreadable("unsupported-format")
        return cast(IO[bytes], opened)

    def _zip(self, stream: IO[bytes], size: int | None, chain: list[str], depth: int, meter: _Meter) -> None:
        entries = _zip_entry_count(stream)
        if entries is None:
            raise _Unreadable("corrupt")
        if entries > self.limits.max_members - meter.members:
            raise _Bound("archive_max_members")
        try:
            zf = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise _Unreadable("corrupt") from exc
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                meter.member()
                tally = self.tally
                tally.archive_members += 1
                if info.flag_bits & 0x1:  # APPNOTE §4.4.4 bit 0: encrypted (also AES, §7)
                    tally.archive_unreadable_members["encrypted"] += 1
                    continue
                if info.file_size == 0:
                    tally.archive_unreadable_members["empty"] += 1
                    continue
                try:
                    member = zf.open(info)
                except NotImplementedError:
                    tally.archive_unreadable_members["unsupported-compression"] += 1
                    continue
                except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
                    tally.archive_unreadable_members["corrupt"] += 1
                    continue
                compressed = info.compress_type != zipfile.ZIP_STORED
                with member:
                    reader = _MemberReader(member, meter, compressed)
                    self._member(reader, info.file_size, [*chain, info.filename], depth, meter)

    def _tar(
        self, stream: IO[bytes], chain: list[str], depth: int, meter: _Meter, *, stream_mode: bool
    ) -> None:
        try:
            tf = tarfile.open(fileobj=stream, mode="r|" if stream_mode else "r:")  # noqa: SIM115
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise _Unreadable("corrupt") from exc
        tally = self.tally
        with tf:
            while True:
                try:
                    info = tf.next()
                except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError):
                    tally.archive_unreadable_members["corrupt"] += 1
                    return
                if info is None:
                    return
                # Iterating with next() never indexes the member list: emptying it keeps memory
                # flat however many members the archive has.
                members: list[tarfile.TarInfo] = tf.members  # type: ignore[attr-defined]
                members.clear()
                if not info.isfile():
                    continue
                meter.member()
                tally.archive_members += 1
                if info.size == 0:
                    tally.archive_unreadable_members["empty"] += 1
                    continue
                member = tf.extractfile(info)
                if member is None:
                    continue
                data: _Reads = member
                if not stream_mode:  # a plain tar read by seeking: its bytes are member bytes
                    data = _MemberReader(member, meter, False)
                self._member(data, info.size, [*chain, info.name], depth, meter)

    # ---- one member -------------------------------------------------------------------------

    def _member(self, stream: _Reads, size: int | None, chain: list[str], depth: int, meter: _Meter) -> None:
        tally = self.tally
        first = self.header_read if size is None else min(self.header_read, size)
        try:
            buf = _read_upto(stream, first)
        except _Bound:
            raise
        except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError):
            tally.archive_unreadable_members["corrupt"] += 1
            return
        if not buf:
            tally.archive_unreadable_members["empty"] += 1
            return
        if size is None:
            # A compressed stream does not say its size: a short read means the whole member.
            size = len(buf) if len(buf) < first else self.max_header_bytes + 1
        hdr = hdrmod.parse(buf, size)
        try:
            while hdr.status == hdrmod.NEED_MORE:
                want = min(hdr.need, self.max_header_bytes, size)
                more = _read_upto(stream, want - len(buf)) if want > len(buf) else b""
                if not more:
                    hdr = hdrmod.parse(buf, size, final=True)
                    break
                buf += more
                hdr = hdrmod.parse(buf, size)
            if hdr.status == hdrmod.UNSUPPORTED:
                tally.pydicom_fallback += 1
                bound = min(size, self.max_header_bytes)
                if len(buf) < bound:
                    buf += _read_upto(stream, bound - len(buf))
                hdr = parse_with_pydicom(buf, size)
        except _Bound:
            raise
        except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError):
            tally.archive_unreadable_members["corrupt"] += 1
            return
        if hdr.status == hdrmod.ARCHIVE:
            self._nested(stream, buf, size, hdr.reason, chain, depth, meter)
            return
        if hdr.status == hdrmod.NOT_DICOM:
            tally.archive_not_dicom += 1
            return
        if hdr.status == hdrmod.OK:
            tally.archive_dicom += 1
        if hdrmod.needs_python(hdr, self.show_paths):
            tally.add_header(hdr, size, self._token(chain), buf)
        else:  # counted by the walker's compiled counter, as the batch reader counts files
            self.counts.add(hdr, size)

    def _nested(
        self,
        stream: _Reads,
        head: bytes,
        size: int,
        kind: str,
        chain: list[str],
        depth: int,
        meter: _Meter,
    ) -> None:
        tally = self.tally
        if depth >= self.limits.max_depth:
            tally.archive_unreadable_members["nesting-too-deep"] += 1
            _mark(tally, "archive_max_depth")
            return
        inner: IO[bytes]
        if kind == "zip":
            # A ZIP is read from its end (central directory), so an inner one is buffered, bounded
            # and metered as it is read (seeking inside a compressed member would inflate it
            # again, unmetered); past the bound it is "could not read" and the outer one goes on.
            if size > self.limits.max_buffered_zip:
                tally.archive_unreadable_members["nested-zip-too-large"] += 1
                return
            rest = _read_upto(stream, self.limits.max_buffered_zip - len(head) + 1)
            if len(head) + len(rest) > self.limits.max_buffered_zip:
                tally.archive_unreadable_members["nested-zip-too-large"] += 1
                return
            inner = io.BytesIO(head + rest)
        else:
            inner = io.BufferedReader(_Prefixed(head, stream), _CHUNK)
        try:
            self._archive(inner, size, kind, chain, depth + 1, meter)
            tally.archives += 1
        except _Unreadable as bad:
            tally.archive_unreadable[bad.why] += 1
        except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError):
            tally.archive_unreadable["corrupt"] += 1

    def _token(self, chain: list[str]) -> Callable[[], str]:
        def token() -> str:
            joined = "!".join(chain)
            if self.show_paths:
                return peer_text(joined, 512)
            return self.hasher.digest(b"path:" + joined.encode("utf-8", "surrogateescape"))

        return token


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (OSError, ValueError):
        return False


def _mark(tally: Tally, why: str) -> None:
    if why not in tally.truncated:
        tally.truncated.append(why)


_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"


def _zip_entry_count(stream: IO[bytes]) -> int | None:
    """Entries the central directory declares (APPNOTE §4.3.16, §4.3.14 for ZIP64), read from
    the end record before ``zipfile`` loads the directory (whose size it would trust)."""
    try:
        end = stream.seek(0, io.SEEK_END)
        tail_len = min(end, 22 + 0xFFFF)
        stream.seek(end - tail_len)
        tail = _read_upto(stream, tail_len)
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
        record = _read_upto(stream, 56)
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
            raise _Bound("share_max_bytes")
        data, _ = self._read(self._path, self._pos, want)
        n = min(len(data), want)
        view[:n] = data[:n]
        self._pos += n
        return n


__all__ = [
    "RATIO_GRACE",
    "ArchiveAuditor",
    "ArchiveLimits",
    "RunBudget",
    "ShareFile",
    "run_budget",
    "set_run_budget",
]
