"""File and share audit: DICOM found by content on disks, NAS mounts, FTP, SMB and web listings,
with PHI counted per DICOM PS3.15 Annex E and Part 10 preambles checked (CVE-2019-11687).

Public API::

    audit_paths(["/srv/nas"], FileAuditOptions()) -> ScanReport     # local / mounted trees
    audit_url("ftp://host/", FileAuditOptions()) -> TargetResult     # ftp, smb, http(s)
    ShareAuditor                                                     # engine Auditor for scan
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use (PEP 562): `pacsradar scan` loads the share auditor, and the file
# audit's own imports (pydicom among them) would otherwise cost every scan start-up.
_LAZY = {
    "SHARE_PORTS": "pacsradar.files.auditor",
    "ShareAuditor": "pacsradar.files.auditor",
    "audit_paths": "pacsradar.files.local",
    "make_report": "pacsradar.files.local",
    "FileAuditOptions": "pacsradar.files.options",
    "audit_ftp": "pacsradar.files.remote",
    "audit_http": "pacsradar.files.remote",
    "audit_smb": "pacsradar.files.remote",
    "audit_url": "pacsradar.files.remote",
    "SPECS": "pacsradar.files.specs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "SHARE_PORTS",
    "SPECS",
    "FileAuditOptions",
    "ShareAuditor",
    "audit_ftp",
    "audit_http",
    "audit_paths",
    "audit_smb",
    "audit_url",
    "make_report",
]
