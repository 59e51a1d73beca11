"""The protocol-neutral, bounded share walk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pacsradar.errors import ScanError
from pacsradar.files import header as hdrmod
from pacsradar.files.fallback import parse_with_pydicom
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.tally import Tally
from pacsradar.phi import peer_text


class ShareError(ScanError):
    """A share operation failed (message written by pacsradar, never a peer's text)."""


class ShareDenied(ShareError):
    """The server refused a listing or a read."""


EntryKind = Literal["dir", "file", "link", "other"]


@dataclass(frozen=True)
class Entry:
    #: Full path on the share, in the client's own syntax. A peer string: never rendered raw.
    path: str
    kind: EntryKind
    size: int | None = None


class ShareClient(Protocol):
    def listdir(self, path: str) -> list[Entry]:
        """Entries of a directory (bounded by the client)."""
        ...

    def read(self, path: str, offset: int, length: int) -> tuple[bytes, int | None]:
        """At most ``length`` bytes from ``offset``, and the file size when the server tells it."""
        ...


def walk_share(client: ShareClient, roots: list[str], options: FileAuditOptions) -> Tally:
    """Walk ``roots`` depth-first within the options' bounds; truncation is recorded in the tally."""
    tally = Tally(show_paths=options.show_paths)
    stack: list[tuple[str, int]] = [(root, 0) for root in reversed(roots)]
    budget = options.share_max_bytes
    while stack:
        path, depth = stack.pop()
        try:
            entries = client.listdir(path)
        except ShareDenied:
            tally.skipped["permission-denied"] += 1
            continue
        except ShareError:
            tally.skipped["list-error"] += 1
            continue
        subdirs: list[str] = []
        for entry in entries:
            if entry.kind == "dir":
                if depth + 1 > options.share_max_depth:
                    _truncate(tally, "share_max_depth")
                else:
                    subdirs.append(entry.path)
                continue
            if entry.kind != "file":
                tally.skipped["symlink" if entry.kind == "link" else "special"] += 1
                continue
            if tally.files_seen >= options.share_max_files:
                _truncate(tally, "share_max_files")
                return tally.seal(options.hasher)
            if tally.bytes_read >= budget:
                _truncate(tally, "share_max_bytes")
                return tally.seal(options.hasher)
            _audit_file(client, entry, tally, options, budget - tally.bytes_read)
        stack.extend((sub, depth + 1) for sub in reversed(subdirs))
    return tally.seal(options.hasher)


def _truncate(tally: Tally, why: str) -> None:
    if why not in tally.truncated:
        tally.truncated.append(why)


def _audit_file(
    client: ShareClient, entry: Entry, tally: Tally, options: FileAuditOptions, budget: int
) -> None:
    tally.files_seen += 1
    if entry.size == 0:
        tally.skipped["empty"] += 1
        return
    cap = min(options.share_file_bytes, budget)
    first = min(options.header_read, cap)
    if entry.size is not None:
        first = min(first, entry.size)
    try:
        buf, size = client.read(entry.path, 0, first)
    except ShareDenied:
        tally.skipped["permission-denied"] += 1
        return
    except ShareError:
        tally.skipped["read-error"] += 1
        return
    size = size if size is not None else entry.size
    sized = size is not None
    if size is None:
        # No size from the server: a short read means we have the whole file.
        size = len(buf) if len(buf) < first else max(len(buf), cap) + 1
    if not buf:
        tally.skipped["empty"] += 1
        return
    hdr = hdrmod.parse(buf, size, final=len(buf) >= cap)
    while hdr.status == hdrmod.NEED_MORE:
        want = min(hdr.need, cap)
        if want <= len(buf):
            hdr = hdrmod.parse(buf, size, final=True)
            break
        try:
            more, _ = client.read(entry.path, len(buf), want - len(buf))
        except ShareError:
            more = b""
        if not more:
            hdr = hdrmod.parse(buf, size, final=True)
            break
        buf += more
        hdr = hdrmod.parse(buf, size, final=len(buf) >= cap)
    if hdr.status == hdrmod.UNSUPPORTED:
        tally.pydicom_fallback += 1
        hdr = parse_with_pydicom(buf, size)
    if hdr.status == hdrmod.ARCHIVE and options.archives.enabled:
        if sized:  # members are read where they are: that needs the archive's size
            _audit_archive(client, entry.path, size, hdr.reason, tally, options, budget)
            return
        tally.archive_unreadable["size-unknown"] += 1
    tally.bytes_read += len(buf)
    tally.add_header(hdr, size, lambda: _token(entry.path, options), buf)


def _audit_archive(
    client: ShareClient, path: str, size: int, kind: str, tally: Tally, options: FileAuditOptions, budget: int
) -> None:
    """Audit an archive on the share in place: its members are read with ranged reads where they
    are (ZIP: central directory, then each member's first bytes), within the share's byte bound."""
    from pacsradar.files import archive as archmod  # only shares holding archives pay for it

    fetched = 0

    def spend(count: int) -> bool:
        nonlocal fetched
        fetched += count
        return fetched <= budget

    auditor = archmod.ArchiveAuditor(
        tally,
        options.archives,
        archmod.run_budget(),
        header_read=options.header_read,
        max_header_bytes=min(options.max_header_bytes, options.share_file_bytes),
        show_paths=options.show_paths,
        hasher=options.hasher,
    )
    # The archive counts the bytes it reads itself (its first prefix again, from the cache-less
    # share: a few KB), and stops at the share's byte bound (tar streams are read in order).
    auditor.audit_stream(archmod.ShareFile(client.read, path, size, spend), size, kind, path)


def _token(path: str, options: FileAuditOptions) -> str:
    if options.show_paths:
        return peer_text(path, 256)
    return options.hasher.digest(b"path:" + path.encode("utf-8", "surrogateescape"))


__all__ = ["Entry", "EntryKind", "ShareClient", "ShareDenied", "ShareError", "walk_share"]
