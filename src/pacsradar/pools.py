"""How many endpoints a scan keeps in flight: the open-file budget, split in two pools.

Imported by :mod:`pacsradar.net` and the engine; stdlib only.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

from pacsradar.config import Limits

#: File descriptors kept back from the socket budget: the store, logs, the event loop, imports.
FD_RESERVE = 256
#: Connections one endpoint may hold at once (the DICOM session plus one probe; see Net).
FDS_PER_ENDPOINT = 2
#: One in this many descriptors of the budget is kept for the second connection of endpoints
#: that answered (the engine's audit slots). Every endpoint in flight holds one descriptor (the
#: gate's socket); only an audited one may hold a second. A sweep's endpoints are nearly all
#: dead, so the rest of the budget is one endpoint per descriptor: under a 20,000-file limit
#: (a sandbox without CAP_SYS_RESOURCE cannot raise it) about 19,100 endpoints in flight and
#: 610 audits at once, where two descriptors for every endpoint allowed 9,870 (issue 14).
AUDIT_SHARE = 32
#: With ``--rate 0`` nothing bounds the pool but the descriptors; more would only add latency.
UNLIMITED_RATE_CONCURRENCY = 4096


def raise_fd_limit(wanted: int = 0) -> int:
    """Raise the open-file soft limit to the hard limit (root: up to ``wanted``, as far as
    ``fs.nr_open`` allows) and return the soft limit now in force.

    A sparse sweep holds one socket per silent endpoint for a whole connect timeout, so the
    descriptor limit, not the CPU, caps its rate (issue 14). Raising the soft limit is what
    every scanner of that kind does; it never lowers a limit.
    """
    try:
        import resource
    except ImportError:  # not POSIX: nothing to raise
        return 1 << 16
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted, 1 << 16)
    new_hard = hard
    if wanted > target and hasattr(os, "geteuid") and os.geteuid() == 0:
        with contextlib.suppress(OSError, ValueError):
            nr_open = int(Path("/proc/sys/fs/nr_open").read_text().strip())
            target = new_hard = max(target, min(wanted, nr_open))
    if target <= soft:
        return int(soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, new_hard))
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def wanted_in_flight(limits: Limits) -> int:
    """Endpoints in flight that ``--rate`` needs (Little's law), within ``--concurrency``."""
    if limits.rate > 0:
        wanted = math.ceil(limits.rate * limits.connect_timeout * 1.2) + 64
    else:
        wanted = UNLIMITED_RATE_CONCURRENCY
    if limits.concurrency > 0:
        wanted = min(wanted, limits.concurrency)
    return wanted


def size_pools(limits: Limits, *, held: bool = True) -> tuple[int, int]:
    """(endpoints in flight, endpoints audited at once): what ``--rate`` needs, within the
    open-file limit.

    A silent endpoint holds its slot for one connect timeout, so a rate of R new connections
    per second needs about R x timeout slots (Little's law) plus headroom for the endpoints that
    answer and take longer; fewer slots and the pool, not the rate, sets the pace. A non-zero
    ``limits.concurrency`` is the user's upper bound. Endpoints in flight hold one descriptor
    each; audited ones a second, from their own pool (:data:`AUDIT_SHARE`), so the two pools
    together never exceed the descriptors.

    ``held=False``: the SYN gate (:mod:`pacsradar.syngate`) holds no descriptor for an endpoint
    waiting for its answer, so only audited endpoints draw on the budget.
    """
    wanted = wanted_in_flight(limits)
    fds = raise_fd_limit(wanted * FDS_PER_ENDPOINT + FD_RESERVE)
    budget = max(2, fds - FD_RESERVE)
    if not held:
        return wanted, max(1, min(wanted, budget // FDS_PER_ENDPOINT))
    if wanted * FDS_PER_ENDPOINT <= budget:
        return wanted, wanted  # room for every endpoint's two connections
    audits = max(1, budget // AUDIT_SHARE)
    return max(1, min(wanted, budget - audits)), audits


__all__ = [
    "AUDIT_SHARE",
    "FDS_PER_ENDPOINT",
    "FD_RESERVE",
    "UNLIMITED_RATE_CONCURRENCY",
    "raise_fd_limit",
    "size_pools",
    "wanted_in_flight",
]
