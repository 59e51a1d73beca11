"""The share auditor for ``pacsradar scan``: anonymous FTP on 21, SMB guest/null on 445, and
open HTTP directory listings on any endpoint the web auditor found speaking HTTP.

Implements :class:`pacsradar.engine.Auditor`. It runs only when ``"share"`` is in
``ScanOptions.only``; the blocking clients run in a worker thread under the engine's per-target
deadline. For HTTP it runs after the web auditor (see ``scan.OPTIONAL_AUDITORS``) and looks at
the site root only: an autoindex page there ("Index of /", nginx/Apache) is walked read-only
with Range requests, anything else is one completed "no listing" attempt.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pacsradar.config import ScanOptions
from pacsradar.engine import AuditContext
from pacsradar.files.options import ArchiveLimits, FileAuditOptions
from pacsradar.models import Attempt, AttemptStatus, Endpoint, TargetResult

if TYPE_CHECKING:
    from pacsradar.registry import AnyUnit

log = logging.getLogger(__name__)

#: Ports the scan must probe when shares are selected (FTP RFC 959, SMB over TCP MS-SMB2 §2.1).
SHARE_PORTS: dict[int, str] = {21: "ftp", 445: "smb"}


def file_options(options: ScanOptions) -> FileAuditOptions:
    """Share bounds for a network scan: the scan's hasher and read timeout, no process pool, and
    no archive read for longer than the scan gives one target."""
    return FileAuditOptions(
        workers=1,
        hasher=options.hasher,
        timeout=options.limits.read_timeout,
        share_max_files=min(10_000, options.max_records),
        archives=ArchiveLimits(max_seconds=min(ArchiveLimits().max_seconds, options.limits.target_deadline)),
    )


class ShareAuditor:
    name = "share"
    #: The engine's TCP gate connects first when this auditor is the first to want an endpoint
    #: (21, 445): a closed or silent share port costs one connect, never the file audit's
    #: imports (pydicom's dictionary, the SMB client: ~0.7 s) or a worker thread. The blocking
    #: clients open their own connection; the engine closes the gate's socket.
    gate = True

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        if "share" not in options.only:
            return False
        if SHARE_PORTS.get(endpoint.port) == "smb" and _http_service(prior) is None and not smb_available():
            return False  # said once per run (smb_available), never as a row per host
        return endpoint.port in SHARE_PORTS or _http_service(prior) is not None

    async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult:
        # Imported here: a scan that finds no share never pays for the file audit's imports.
        from pacsradar.files.remote import audit_ftp, audit_http, audit_smb

        opts = file_options(ctx.options)
        http = _http_service(ctx.prior)
        unit = _unit(f"share.{'http' if http is not None else SHARE_PORTS[endpoint.port]}")
        if unit.intrusive and not ctx.options.intrusive:
            return TargetResult(
                endpoint=endpoint,
                reachable=True,
                attempts=(
                    Attempt(check=unit.name, status=AttemptStatus.SKIPPED, reason="needs --intrusive"),
                ),
            )
        if http is not None:
            # The thread watches the endpoint's deadline itself (the engine cannot cancel it),
            # ending a little before it so that its partial result is still reported.
            deadline = None
            if ctx.deadline is not None:
                margin = min(1.0, 0.05 * ctx.options.limits.target_deadline)
                deadline = ctx.deadline - margin
            return await asyncio.to_thread(
                audit_http, endpoint.host, endpoint.port, opts, "/", tls=http == "https", deadline=deadline
            )
        if SHARE_PORTS[endpoint.port] == "ftp":
            return await asyncio.to_thread(audit_ftp, endpoint.host, endpoint.port, opts)
        return await asyncio.to_thread(audit_smb, endpoint.host, endpoint.port, opts)


def _unit(name: str) -> AnyUnit:
    from pacsradar.registry import unit_named

    return unit_named("share", name)


@functools.cache
def smb_available() -> bool:
    """Whether the SMB client (smbprotocol, in the default install) can be imported; when it
    cannot, SMB is skipped with one warning per run instead of a result per host."""
    if importlib.util.find_spec("smbprotocol") is not None:
        return True
    log.warning("smbprotocol is not installed: SMB shares are not audited (pip install smbprotocol)")
    return False


def _http_service(prior: Sequence[TargetResult]) -> str | None:
    """'http' or 'https' when an earlier auditor spoke HTTP on this endpoint."""
    return next((p.service for p in prior if p.reachable and p.service in ("http", "https")), None)


__all__ = ["SHARE_PORTS", "ShareAuditor", "file_options"]
