"""Local (and mounted NAS) file audit: a symlink-safe walker feeding a process pool.

The main process walks directories with ``os.scandir`` (no stat per file) and hands batches of
paths to worker processes; each worker opens a file without following symlinks and without
blocking (a FIFO swapped in after the walk cannot hang it), reads the smallest prefix holding the
header, parses it with :mod:`pacsradar.files.header`, and returns a sealed :class:`Tally`.
"""

from __future__ import annotations

import errno
import functools
import multiprocessing
import os
import secrets
import signal
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pacsradar import __version__
from pacsradar.errors import UsageError
from pacsradar.files import header as hdrmod
from pacsradar.files.fallback import parse_with_pydicom
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.specs import local_findings
from pacsradar.files.tally import Tally
from pacsradar.models import Attempt, AttemptStatus, Endpoint, ScanReport, ScanStats, TargetResult

#: Called in the main process after each batch: (files done, DICOM files so far).
Progress = Callable[[int, int], None]

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special"


@dataclass(frozen=True)
class _WorkerConfig:
    root: str
    options: FileAuditOptions


_CONFIG: _WorkerConfig | None = None


def _init_worker(config: _WorkerConfig) -> None:
    global _CONFIG
    _CONFIG = config
    # Ctrl-C is the parent's to handle: it terminates the pool and reports what it has.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def read_file(path: str, tally: Tally, options: FileAuditOptions, token: Callable[[], str]) -> None:
    """Audit one file into ``tally``. Never raises for a bad file: each is counted with a reason."""
    tally.files_seen += 1
    flags = _OPEN_FLAGS | (0 if options.follow_symlinks else _NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        tally.skipped["permission-denied"] += 1
        return
    except OSError as exc:
        tally.skipped[_os_reason(exc)] += 1
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            tally.skipped[_special_kind(st.st_mode)] += 1
            return
        size = st.st_size
        if size == 0:
            tally.skipped["empty"] += 1
            return
        want = min(size, options.header_read)
        buf = os.pread(fd, want, 0)
        hdr = hdrmod.parse(buf, size)
        while hdr.status == hdrmod.NEED_MORE:
            want = min(hdr.need, options.max_header_bytes, size)
            if want <= len(buf):
                hdr = hdrmod.parse(buf, size, final=True)
                break
            more = os.pread(fd, want - len(buf), len(buf))
            if not more:  # the file shrank under us
                hdr = hdrmod.parse(buf, size, final=True)
                break
            buf += more
            hdr = hdrmod.parse(buf, size)
        if hdr.status == hdrmod.UNSUPPORTED:
            tally.pydicom_fallback += 1
            if len(buf) < min(size, options.max_header_bytes):
                buf += os.pread(fd, min(size, options.max_header_bytes) - len(buf), len(buf))
            hdr = parse_with_pydicom(buf, size)
        tally.bytes_read += len(buf)
    except OSError as exc:
        tally.skipped[_os_reason(exc)] += 1
        return
    finally:
        os.close(fd)
    tally.add_header(hdr, size, token, buf)


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "vanished"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission-denied"
    return "io-error"


def _token(path: str, config: _WorkerConfig) -> str:
    rel = os.path.relpath(path, config.root) if path != config.root else os.path.basename(path)
    if config.options.show_paths:
        return rel
    return config.options.hasher.digest(b"path:" + os.fsencode(rel))


def _audit_batch(paths: list[str]) -> Tally:
    config = _CONFIG
    assert config is not None, "worker not initialised"
    return audit_batch(paths, config)


def audit_batch(paths: list[str], config: _WorkerConfig) -> Tally:
    options = config.options
    tally = Tally(show_paths=options.show_paths)
    for path in paths:
        read_file(path, tally, options, functools.partial(_token, path, config))
    return tally.seal(options.hasher)


class Walker:
    """Iterative directory walk; symlinks are counted, or followed with loop detection."""

    def __init__(self, root: str, options: FileAuditOptions) -> None:
        self.root = root
        self.options = options
        self.skipped: Counter[str] = Counter()
        self.truncated: list[str] = []
        self.yielded = 0

    def _limit_reached(self) -> bool:
        limit = self.options.max_files
        if limit is not None and self.yielded >= limit:
            if "max_files" not in self.truncated:
                self.truncated.append("max_files")
            return True
        return False

    def paths(self) -> Iterator[str]:
        follow = self.options.follow_symlinks
        visited: set[tuple[int, int]] = set()
        seen_files: set[tuple[int, int]] = set()
        stack: list[tuple[str, int]] = [(self.root, 0)]
        while stack:
            directory, depth = stack.pop()
            dev = 0
            if follow:
                try:
                    st = os.stat(directory)
                except OSError as exc:
                    self.skipped[_os_reason(exc)] += 1
                    continue
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    self.skipped["symlink-loop"] += 1
                    continue
                visited.add(key)
                dev = st.st_dev
            try:
                it = os.scandir(directory)
            except OSError as exc:
                self.skipped[_os_reason(exc)] += 1
                continue
            with it:
                while True:
                    try:
                        entry = next(it, None)
                    except OSError as exc:
                        self.skipped[_os_reason(exc)] += 1
                        break
                    if entry is None:
                        break
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if depth + 1 > self.options.max_depth:
                                self.skipped["depth-limit"] += 1
                            else:
                                stack.append((entry.path, depth + 1))
                            continue
                        if entry.is_file(follow_symlinks=False):
                            if follow:
                                ident = (dev, entry.inode())
                                if ident in seen_files:
                                    continue
                                seen_files.add(ident)
                            if self._limit_reached():
                                return
                            self.yielded += 1
                            yield entry.path
                            continue
                        if entry.is_symlink():
                            if not follow:
                                self.skipped["symlink"] += 1
                                continue
                            target = self._follow(entry.path, seen_files)
                            if target == "dir":
                                if depth + 1 > self.options.max_depth:
                                    self.skipped["depth-limit"] += 1
                                else:
                                    stack.append((entry.path, depth + 1))
                            elif target == "file":
                                if self._limit_reached():
                                    return
                                self.yielded += 1
                                yield entry.path
                            continue
                        self.skipped[_special_kind(entry.stat(follow_symlinks=False).st_mode)] += 1
                    except OSError as exc:
                        self.skipped[_os_reason(exc)] += 1

    def _follow(self, path: str, seen_files: set[tuple[int, int]]) -> str:
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.skipped["symlink-loop"] += 1
            elif exc.errno == errno.ENOENT:
                self.skipped["broken-symlink"] += 1
            else:
                self.skipped[_os_reason(exc)] += 1
            return ""
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        if stat.S_ISREG(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            if ident in seen_files:
                return ""
            seen_files.add(ident)
            return "file"
        self.skipped[_special_kind(st.st_mode)] += 1
        return ""


def _batches(paths: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for path in paths:
        batch.append(path)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def audit_tree(root: str, options: FileAuditOptions, progress: Progress | None = None) -> tuple[Tally, bool]:
    """Walk ``root`` (a directory or one file) and return the merged tally and whether Ctrl-C cut it."""
    config = _WorkerConfig(root=root, options=options)
    total = Tally(show_paths=options.show_paths)
    walker = Walker(root, options)
    if os.path.isdir(root):
        paths: Iterator[str] = walker.paths()
    else:
        paths = iter([root])
    batches = _batches(paths, options.batch_size)
    interrupted = False
    if options.workers <= 1:
        try:
            for batch in batches:
                total.merge(audit_batch(batch, config))
                if progress:
                    progress(total.files_seen, total.dicom_files)
        except KeyboardInterrupt:
            interrupted = True
    else:
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        pool = ctx.Pool(options.workers, initializer=_init_worker, initargs=(config,))
        try:
            for part in pool.imap_unordered(_audit_batch, batches):
                total.merge(part)
                if progress:
                    progress(total.files_seen, total.dicom_files)
            pool.close()
        except KeyboardInterrupt:
            interrupted = True
            pool.terminate()
        finally:
            pool.terminate()
            pool.join()
    total.skipped.update(walker.skipped)
    total.truncated.extend(walker.truncated)
    return total, interrupted


def audit_paths(
    roots: list[str],
    options: FileAuditOptions | None = None,
    *,
    progress: Progress | None = None,
    scan_id: str | None = None,
) -> ScanReport:
    """Audit local paths; one :class:`TargetResult` per root, in a :class:`ScanReport`."""
    options = options or FileAuditOptions()
    for root in roots:
        if not os.path.lexists(root):
            raise UsageError("path does not exist")
    started = datetime.now(UTC)
    results: list[TargetResult] = []
    interrupted = False
    for root in roots:
        t0 = time.monotonic()
        tally, cut = audit_tree(root, options, progress)
        interrupted = interrupted or cut
        results.append(local_result(root, tally, (time.monotonic() - t0) * 1000, started))
        if cut:
            break
    return make_report(roots, results, started, options, interrupted=interrupted, scan_id=scan_id)


def local_result(root: str, tally: Tally, elapsed_ms: float, started: datetime) -> TargetResult:
    endpoint = Endpoint(host=root, protocol="file")
    return TargetResult(
        endpoint=endpoint,
        reachable=True,
        service="files",
        attempts=(
            Attempt(
                check="files.walk",
                status=AttemptStatus.COMPLETED,
                duration_ms=elapsed_ms,
                details=tally.walk_details(),
            ),
        ),
        findings=local_findings(endpoint, tally),
        started_at=started,
        duration_ms=elapsed_ms,
    )


def make_report(
    scope: list[str],
    results: list[TargetResult],
    started: datetime,
    options: FileAuditOptions,
    *,
    interrupted: bool = False,
    scan_id: str | None = None,
) -> ScanReport:
    errors = sum(any(a.status is AttemptStatus.ERROR for a in r.attempts) for r in results)
    return ScanReport(
        scan_id=scan_id or started.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3),
        version=__version__,
        started_at=started,
        finished_at=datetime.now(UTC),
        scope=tuple(scope),
        options={
            "mode": "files",
            "workers": options.workers,
            "follow_symlinks": options.follow_symlinks,
            "show_paths": options.show_paths,
            "max_files": options.max_files,
        },
        stats=ScanStats(
            endpoints_total=len(scope),
            endpoints_done=len(results),
            endpoints_open=sum(r.reachable for r in results),
            endpoints_closed=sum(not r.reachable for r in results),
            endpoints_error=errors,
            interrupted=interrupted,
        ),
        results=tuple(results),
    )


__all__ = ["Progress", "Walker", "audit_paths", "audit_tree", "make_report", "read_file"]
