"""The one table of protocol families: what ``--only`` selects, which auditor runs it, and how
the registry, ``pacsradar checks`` and the reports group the checks.

Pure data with no imports of the stack, so the configuration and the CLI read it without
loading any auditor (scan start-up stays short).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One protocol family."""

    #: the ``--only`` value and the registry's family key
    name: str
    title: str
    #: ``(module, class)`` of its engine auditor; ``None`` for a family that is not a network
    #: scan (the local file audit is its own command, ``pacsradar files``)
    auditor: tuple[str, str] | None
    #: whether the scan runs without it when its module (an optional extra) is missing
    optional: bool = True


#: In auditor order: DICOM first, so that an HTTP server it finds on a DICOM port is handed to
#: the web auditor, and the share auditor after the web one (it walks HTTP listings that the
#: web auditor found).
FAMILIES: tuple[Family, ...] = (
    Family(
        "dicom", "DICOM (DIMSE and DICOM-TLS)", ("pacsradar.dicom.auditor", "DicomAuditor"), optional=False
    ),
    Family("web", "Web, DICOMweb and HTTPS", ("pacsradar.web.auditor", "WebAuditor")),
    Family(
        "share",
        "File shares (anonymous FTP, SMB guest, HTTP listings)",
        ("pacsradar.files.auditor", "ShareAuditor"),
    ),
    Family("files", "Local files (pacsradar files)", None),
)

BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}
#: What ``scan --only`` accepts (and runs when it is not given).
SCAN_FAMILIES: tuple[str, ...] = tuple(f.name for f in FAMILIES if f.auditor is not None)

__all__ = ["BY_NAME", "FAMILIES", "SCAN_FAMILIES", "Family"]
