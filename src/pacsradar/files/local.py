"""Local (and mounted NAS) file audit: a symlink-safe walker feeding a process pool.

The main process walks directories with ``os.scandir`` (no stat per file) and hands batches of
paths to worker processes; each worker opens a file without following symlinks and without
blocking (a FIFO swapped in after the walk cannot hang it), reads the smallest prefix holding the
header and walks it, all in :func:`pacsradar.files.header.read_files` (compiled when built), and
returns one sealed :class:`Tally` per batch: counts, Annex E keywords and keyed hashes, no
per-file objects and no PHI value.
"""

from __future__ import annotations

import functools
import io
import multiprocessing
import os
import secrets
import signal
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pacsradar import __version__
from pacsradar.errors import UsageError
from pacsradar.files import archive as archmod
from pacsradar.files import header as hdrmod
from pacsradar.files.fallback import parse_with_pydicom
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.specs import local_findings
from pacsradar.files.tally import Tally
from pacsradar.models import Attempt, AttemptStatus, Endpoint, ScanReport, ScanStats, TargetResult
from pacsradar.phi import shown_path

#: Called in the main process after each batch: (files done, DICOM files so far).
Progress = Callable[[int, int], None]
#: Length of the first batches; they double up to ``FileAuditOptions.batch_size``.
_FIRST_BATCH = 256


@dataclass(frozen=True)
class _WorkerConfig:
    root: str
    options: FileAuditOptions


_CONFIG: _WorkerConfig | None = None


def _init_worker(config: _WorkerConfig, budget: archmod.RunBudget) -> None:
    global _CONFIG
    _CONFIG = config
    archmod.set_run_budget(budget)
    # Ctrl-C is the parent's to handle: it terminates the pool and reports what it has.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def read_file(path: str, tally: Tally, options: FileAuditOptions, token: Callable[[], str]) -> None:
    """Audit one file into ``tally``. Never raises for a bad file: each is counted with a reason."""
    name = os.path.basename(path)
    _read_into(tally, [path], options, lambda _index: token, lambda _index: name)


def _read_into(
    tally: Tally,
    paths: list[str],
    options: FileAuditOptions,
    token_of: Callable[[int], Callable[[], str]],
    name_of: Callable[[int], str],
) -> None:
    """Read ``paths`` into ``tally`` (unsealed). Most files are counted inside the reader; the few
    listed by path token (executable or unknown preambles, malformed files when paths are shown)
    come back one by one to :meth:`Tally.add_header`, with ``token_of(index)``; archives come
    back to be opened (:mod:`pacsradar.files.archive`), their members named after ``name_of``."""
    limits = options.archives
    auditor: archmod.ArchiveAuditor | None = None

    def slow(index: int, hdr: hdrmod.Header, size: int, head: bytes) -> None:
        nonlocal auditor
        if hdr.status == hdrmod.ARCHIVE:
            if auditor is None:
                auditor = archmod.ArchiveAuditor(
                    tally,
                    limits,
                    archmod.run_budget(),
                    header_read=options.header_read,
                    max_header_bytes=options.max_header_bytes,
                    show_paths=options.show_paths,
                    hasher=options.hasher,
                )
            _open_archive(auditor, paths[index], size, hdr.reason, name_of(index), options)
            return
        tally.add_header(hdr, size, token_of(index), head)

    counts = hdrmod.Counts()
    hdrmod.read_files(
        paths,
        options.follow_symlinks,
        options.show_paths,
        options.header_read,
        options.max_header_bytes,
        counts,
        parse_with_pydicom,
        slow,
        limits.enabled,
    )
    tally.add_counts(counts)


def _open_archive(
    auditor: archmod.ArchiveAuditor, path: str, size: int, kind: str, name: str, options: FileAuditOptions
) -> None:
    """Open an archive the reader recognised, as safely as the reader opens files (no symlink
    followed unless asked, no blocking, a regular file on the open descriptor), and audit it."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not options.follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        auditor.tally.archive_unreadable[hdrmod.os_reason(exc)] += 1
        return
    with os.fdopen(fd, "rb", buffering=0) as raw:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                auditor.tally.archive_unreadable["special"] += 1
                return
        except OSError as exc:
            auditor.tally.archive_unreadable[hdrmod.os_reason(exc)] += 1
            return
        # A local ZIP is read where its members are: small reads; streams: large ones.
        auditor.audit_stream(
            raw, size, kind, name, chunk=io.DEFAULT_BUFFER_SIZE if kind == "zip" else 1 << 16
        )


def _rel(path: str, config: _WorkerConfig) -> str:
    return os.path.relpath(path, config.root) if path != config.root else os.path.basename(path)


def _token(path: str, config: _WorkerConfig) -> str:
    rel = _rel(path, config)
    if config.options.show_paths:
        return shown_path(rel)  # a name that is not UTF-8 is escaped, never a surrogate
    return config.options.hasher.digest(b"path:" + os.fsencode(rel))


def _audit_batch(paths: list[str]) -> Tally:
    config = _CONFIG
    assert config is not None, "worker not initialised"
    return audit_batch(paths, config)


def audit_batch(paths: list[str], config: _WorkerConfig) -> Tally:
    """Audit a batch into one sealed tally: what a worker sends back (counts, keywords, keyed
    hashes; no value and no path unless paths are shown)."""
    options = config.options
    tally = Tally(show_paths=options.show_paths)
    _read_into(
        tally,
        paths,
        options,
        lambda index: functools.partial(_token, paths[index], config),
        lambda index: _rel(paths[index], config),
    )
    return tally.seal(options.hasher)


class Walker:
    """Iterative directory walk; symlinks are counted, or followed with loop detection.

    The walk itself is :class:`pacsradar.files.header.TreeWalker` (compiled with the reader);
    ``skipped`` and ``truncated`` say what was not walked and which bound was hit.
    """

    def __init__(self, root: str, options: FileAuditOptions) -> None:
        max_files = -1 if options.max_files is None else options.max_files
        self._walker = hdrmod.TreeWalker(root, options.max_depth, max_files, options.follow_symlinks)

    @property
    def skipped(self) -> dict[str, int]:
        return self._walker.skipped

    @property
    def truncated(self) -> list[str]:
        return self._walker.truncated

    @property
    def yielded(self) -> int:
        return self._walker.yielded

    def batches(self, size: int, first: int = 0) -> Iterator[list[str]]:
        """File paths in lists of ``size`` (one task for a worker each); see
        :meth:`pacsradar.files.header.TreeWalker.batches` for ``first``."""
        return self._walker.batches(size, first)

    def paths(self) -> Iterator[str]:
        for batch in self._walker.batches(256):
            yield from batch


def audit_tree(root: str, options: FileAuditOptions, progress: Progress | None = None) -> tuple[Tally, bool]:
    """Walk ``root`` (a directory or one file) and return the merged tally and whether Ctrl-C cut it."""
    config = _WorkerConfig(root=root, options=options)
    total = Tally(show_paths=options.show_paths)
    walker = Walker(root, options)
    if os.path.isdir(root):
        batches = walker.batches(options.batch_size, min(_FIRST_BATCH, options.batch_size))
    else:
        batches = iter([[root]])
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
        budget = archmod.run_budget()  # before the fork: shared by the workers
        pool = ctx.Pool(options.workers, initializer=_init_worker, initargs=(config, budget))
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
