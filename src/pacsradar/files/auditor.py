"""The share auditor for ``pacsradar scan``: anonymous FTP on 21 and SMB guest/null on 445.

Implements :class:`pacsradar.engine.Auditor`. It runs only when ``"share"`` is in
``ScanOptions.only``; the blocking clients run in a worker thread under the engine's per-target
deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pacsradar.config import ScanOptions
from pacsradar.engine import AuditContext
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.remote import audit_ftp, audit_smb
from pacsradar.models import Endpoint, TargetResult

#: Ports the scan must probe when shares are selected (FTP RFC 959, SMB over TCP MS-SMB2 §2.1).
SHARE_PORTS: dict[int, str] = {21: "ftp", 445: "smb"}


def file_options(options: ScanOptions) -> FileAuditOptions:
    """Share bounds for a network scan: the scan's hasher and read timeout, no process pool."""
    return FileAuditOptions(
        workers=1,
        hasher=options.hasher,
        timeout=options.limits.read_timeout,
        share_max_files=min(10_000, options.max_records),
    )


class ShareAuditor:
    name = "share"

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        return "share" in options.only and endpoint.port in SHARE_PORTS

    async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult:
        opts = file_options(ctx.options)
        if SHARE_PORTS[endpoint.port] == "ftp":
            return await asyncio.to_thread(audit_ftp, endpoint.host, endpoint.port, opts)
        return await asyncio.to_thread(audit_smb, endpoint.host, endpoint.port, opts)


__all__ = ["SHARE_PORTS", "ShareAuditor", "file_options"]
