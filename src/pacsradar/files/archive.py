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
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any, cast

from pacsradar.errors import ScanError
from pacsradar.files import header as hdrmod
from pacsradar.files.fallback import parse_with_pydicom
from pacsradar.files.options import ArchiveLimits
from pacsradar.files.streams import (
    CHUNK,
    Bound,
    MemberReader,
    Meter,
    Metered,
    Prefixed,
    Reads,
    RunBudget,
    ShareFile,
    Source,
    Unreadable,
    read_upto,
    run_budget,
    seekable,
    set_run_budget,
    zip_entry_count,
)
from pacsradar.files.tally import Tally
from pacsradar.phi import KeyedHasher, peer_text

_TAR_BLOCK = 512


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

    def audit_stream(self, raw: Source, size: int, kind: str, name: str, *, chunk: int = CHUNK) -> None:
        """Audit the archive ``raw`` (positioned at 0; seekable for ZIP) of ``size`` bytes, whose
        first bytes the walker recognised as ``kind``. ``name`` is its path token source (the
        relative path, or a share path): never rendered unless paths are shown. ``chunk`` is the
        read size on ``raw`` (small for a local ZIP, whose members are read where they are)."""
        tally = self.tally
        meter = Meter(self.limits, self.run)
        metered = io.BufferedReader(Metered(raw, meter, raw=True), chunk)
        try:
            self._guarded(metered, size, kind, name, meter)
        finally:
            # What was read of the archive itself: compressed bytes, as they are on disk.
            tally.bytes_read += meter.raw_in
            # Members counted in the walker's own counts (see _member), folded in once.
            tally.add_counts(self.counts)
            self.counts = hdrmod.Counts()

    def _guarded(self, metered: IO[bytes], size: int, kind: str, name: str, meter: Meter) -> None:
        tally = self.tally
        try:
            self._archive(metered, size, kind, [name], 1, meter)
            tally.archives += 1
        except Bound as bound:
            tally.archives += 1
            _mark(tally, bound.why)
        except Unreadable as bad:
            tally.archive_unreadable[bad.why] += 1
        except ScanError:  # a share read failed (its message is ours, not the peer's)
            tally.archive_unreadable["read-error"] += 1
        except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError):
            tally.archive_unreadable["corrupt"] += 1
        except Exception:  # hostile input must not stop the audit; nothing of it is logged
            tally.archive_unreadable["error"] += 1

    # ---- one archive level ------------------------------------------------------------------

    def _archive(
        self, stream: IO[bytes], size: int | None, kind: str, chain: list[str], depth: int, meter: Meter
    ) -> None:
        if kind == "zip":
            self._zip(stream, size, chain, depth, meter)
            return
        if kind == "tar":
            self._tar(stream, chain, depth, meter, stream_mode=not seekable(stream))
            return
        decompressed = self._decompressor(kind, stream)
        out = io.BufferedReader(Metered(decompressed, meter, raw=False, compressed=True), CHUNK)
        try:
            head = out.peek(_TAR_BLOCK)[:_TAR_BLOCK]
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise Unreadable("corrupt") from exc
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
            raise Unreadable("unsupported-format")
        return cast(IO[bytes], opened)

    def _zip(self, stream: IO[bytes], size: int | None, chain: list[str], depth: int, meter: Meter) -> None:
        entries = zip_entry_count(stream)
        if entries is None:
            raise Unreadable("corrupt")
        if entries > self.limits.max_members - meter.members:
            raise Bound("archive_max_members")
        try:
            zf = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise Unreadable("corrupt") from exc
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
                    reader = MemberReader(member, meter, compressed)
                    self._member(reader, info.file_size, [*chain, info.filename], depth, meter)

    def _tar(
        self, stream: IO[bytes], chain: list[str], depth: int, meter: Meter, *, stream_mode: bool
    ) -> None:
        try:
            tf = tarfile.open(fileobj=stream, mode="r|" if stream_mode else "r:")  # noqa: SIM115
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise Unreadable("corrupt") from exc
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
                data: Reads = member
                if not stream_mode:  # a plain tar read by seeking: its bytes are member bytes
                    data = MemberReader(member, meter, False)
                self._member(data, info.size, [*chain, info.name], depth, meter)

    # ---- one member -------------------------------------------------------------------------

    def _member(self, stream: Reads, size: int | None, chain: list[str], depth: int, meter: Meter) -> None:
        tally = self.tally
        first = self.header_read if size is None else min(self.header_read, size)
        try:
            buf = read_upto(stream, first)
        except Bound:
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
                more = read_upto(stream, want - len(buf)) if want > len(buf) else b""
                if not more:
                    hdr = hdrmod.parse(buf, size, final=True)
                    break
                buf += more
                hdr = hdrmod.parse(buf, size)
            if hdr.status == hdrmod.UNSUPPORTED:
                tally.pydicom_fallback += 1
                bound = min(size, self.max_header_bytes)
                if len(buf) < bound:
                    buf += read_upto(stream, bound - len(buf))
                hdr = parse_with_pydicom(buf, size)
        except Bound:
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
        stream: Reads,
        head: bytes,
        size: int,
        kind: str,
        chain: list[str],
        depth: int,
        meter: Meter,
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
            rest = read_upto(stream, self.limits.max_buffered_zip - len(head) + 1)
            if len(head) + len(rest) > self.limits.max_buffered_zip:
                tally.archive_unreadable_members["nested-zip-too-large"] += 1
                return
            inner = io.BytesIO(head + rest)
        else:
            inner = io.BufferedReader(Prefixed(head, stream), CHUNK)
        try:
            self._archive(inner, size, kind, chain, depth + 1, meter)
            tally.archives += 1
        except Unreadable as bad:
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


def _mark(tally: Tally, why: str) -> None:
    if why not in tally.truncated:
        tally.truncated.append(why)


__all__ = ["ArchiveAuditor", "ArchiveLimits", "RunBudget", "ShareFile", "run_budget", "set_run_budget"]
