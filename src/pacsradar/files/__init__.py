"""File and share audit: DICOM found by content on disks, NAS mounts, FTP, SMB and web listings,
with PHI counted per DICOM PS3.15 Annex E and Part 10 preambles checked (CVE-2019-11687).

Public API::

    audit_paths(["/srv/nas"], FileAuditOptions()) -> ScanReport     # local / mounted trees
    audit_url("ftp://host/", FileAuditOptions()) -> TargetResult     # ftp, smb, http(s)
    ShareAuditor                                                     # engine Auditor for scan
"""

from __future__ import annotations

from pacsradar.files.auditor import SHARE_PORTS, ShareAuditor
from pacsradar.files.local import audit_paths, make_report
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.remote import audit_ftp, audit_http, audit_smb, audit_url
from pacsradar.files.specs import SPECS

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
