"""The file and share audits as the registry lists them: one :class:`Unit` per attempt name.

They build their own attempt envelopes (:mod:`pacsradar.files.remote`, :mod:`pacsradar.files.local`),
so they are declared here rather than wrapped in a :class:`~pacsradar.checks.Check`. None sends
anything but reads.
"""

from __future__ import annotations

from pacsradar.checks import Unit
from pacsradar.files.specs import (
    FILE_PHI,
    FILE_PREAMBLE_EXECUTABLE,
    FILE_PREAMBLE_UNKNOWN,
    SHARE_ANON_ACCESS,
    SHARE_ANON_DICOM,
)

_SHARE_SPECS = (SHARE_ANON_ACCESS, SHARE_ANON_DICOM, FILE_PREAMBLE_EXECUTABLE, FILE_PREAMBLE_UNKNOWN)

#: Anonymous FTP (RFC 959 ``USER anonymous``), walked read-only.
FTP = Unit(name="share.ftp", specs=_SHARE_SPECS)
#: SMB guest or null session (MS-SMB2), shares enumerated and walked read-only.
SMB = Unit(name="share.smb", specs=_SHARE_SPECS)
#: An HTTP directory listing ("Index of /") on an endpoint the web auditor found.
HTTP = Unit(name="share.http", specs=_SHARE_SPECS)
#: ``pacsradar files PATH``: the local tree, DICOM recognised by content.
LOCAL = Unit(name="files.walk", specs=(FILE_PHI, FILE_PREAMBLE_EXECUTABLE, FILE_PREAMBLE_UNKNOWN))

SHARE_UNITS: tuple[Unit, ...] = (FTP, SMB, HTTP)
FILE_UNITS: tuple[Unit, ...] = (LOCAL,)

__all__ = ["FILE_UNITS", "FTP", "HTTP", "LOCAL", "SHARE_UNITS", "SMB"]
