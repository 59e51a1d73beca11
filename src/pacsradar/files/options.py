"""Options of the file and share audit: explicit bounds, passed down, never global."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pacsradar.phi import KeyedHasher


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds of the archive audit; ``enabled=False`` counts archives as not DICOM."""

    enabled: bool = True
    #: Uncompressed bytes read at most per archive (its nested archives included).
    max_bytes: int = 4 << 30
    #: Uncompressed bytes read at most in archives per run (every archive, every worker).
    max_run_bytes: int = 64 << 30
    #: Largest ratio of uncompressed bytes produced to compressed bytes read (past 1 MiB).
    max_ratio: float = 200.0
    #: Members per archive at most (nested members included).
    max_members: int = 100_000
    #: Archive levels opened: 1 = archives only, 2 = an archive inside an archive too.
    max_depth: int = 2
    #: Seconds per archive (outermost), nested archives included.
    max_seconds: float = 300.0
    #: An inner ZIP (read from its end) is buffered in memory up to this size, else not read.
    max_buffered_zip: int = 64 << 20


@dataclass(frozen=True)
class FileAuditOptions:
    #: Worker processes for local walks; 1 audits in-process (no pool).
    workers: int = field(default_factory=default_workers)
    #: First read per file; most headers fit in 8 KiB (PS3.10 meta plus a typical image header).
    header_read: int = 8192
    #: Largest prefix read to reach the end of a header; past it the header counts as partial.
    max_header_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_files: int | None = None
    follow_symlinks: bool = False
    show_paths: bool = False
    #: Paths per batch sent to a worker at most (the first batches are smaller and double): one
    #: task, one sealed tally and one progress update each. Large, so that the pool's per-task
    #: cost in the parent (about a millisecond: pipes, pickling, its threads) and the per-batch
    #: hashing of repeated identifiers stay small next to the files' own cost.
    batch_size: int = 4096
    hasher: KeyedHasher = field(default_factory=KeyedHasher)
    # Share bounds (per share root).
    share_max_files: int = 10_000
    share_max_depth: int = 16
    share_max_bytes: int = 256 * 1024 * 1024
    #: Bytes read at most per file on a share (the header prefix).
    share_file_bytes: int = 64 * 1024
    timeout: float = 10.0
    #: Bounds of the archive audit (ZIP, gzip, bzip2, xz, tar), :mod:`pacsradar.files.archive`.
    archives: ArchiveLimits = field(default_factory=ArchiveLimits)


__all__ = ["ArchiveLimits", "FileAuditOptions", "default_workers"]
