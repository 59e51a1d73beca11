"""Web facts: what the fingerprint and QIDO probes learnt about one endpoint, frozen.

The probes produce them; later checks read them from :class:`~pacsradar.web.context.WebContext`
(``ctx.fingerprint``, ``ctx.qido``) and never mutate them: a refinement (a version read behind
a login, a DICOMweb answer naming an unidentified service) replaces the fact with a new one.
Keeping them here, apart from the checks, is what lets the context name them without importing
the checks back (no import circle).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal

from pacsradar.models import Evidence, Holdings
from pacsradar.phi import peer_text

VERSION_OK = re.compile(r"^[0-9][0-9A-Za-z.+~_-]{0,31}$")
GENERIC_DICOMWEB = "DICOMweb (generic)"


@dataclass(frozen=True)
class FingerprintResult:
    """sslyze-style typed result. Every string in it is ours or passed through ``peer_text``."""

    product: str | None
    version: str | None
    components: tuple[str, ...]
    confidence: str | None
    auth_required: bool
    login_form: bool
    server: str | None
    probes: int
    probe_errors: int
    matched: tuple[str, ...]
    #: dcm4chee-arc AE titles, only to build its DICOMweb paths; never reported
    aets: tuple[str, ...] = ()
    #: the status of GET / and a keyed hash of its body (never the body): the scan-level
    #: honeypot pass compares the web ports of one host (pacsradar.dicom.honeypot.scanwide)
    root_status: int | None = None
    root_digest: str | None = None

    def with_version(self, raw: object) -> FingerprintResult:
        """This fingerprint completed with a version read later (bounded, validated)."""
        if self.version is not None or not isinstance(raw, str):
            return self
        text = peer_text(raw, 32)
        return dataclasses.replace(self, version=text) if VERSION_OK.match(text) else self

    def as_dicomweb(self) -> FingerprintResult:
        """A DICOMweb answer on an otherwise unidentified service names it (PS3.18)."""
        if self.product is not None:
            return self
        return dataclasses.replace(self, product=GENERIC_DICOMWEB, confidence="verified")


QidoStatus = Literal["open", "auth", "absent"]


@dataclass(frozen=True)
class QidoResult:
    status: QidoStatus
    #: our own path template ("/dicom-web", "/dcm4chee-arc/aets/{aet}/rs"); None when absent
    base_template: str | None = None
    studies: int = 0
    instances: int | None = None
    patients: int | None = None
    pages: int = 0
    truncated: bool = False
    year_min: int | None = None
    year_max: int | None = None
    bases_tried: int = 0
    #: memory only, for the WADO probe; never reported (field(repr=False) keeps it out of logs)
    base: str | None = field(default=None, repr=False)
    sample_study_uid: str | None = field(default=None, repr=False)
    #: keyed hashes behind the counts (never values); travels with the finding only
    holdings: Holdings | None = field(default=None, repr=False)
    #: rows that repeated a study already counted (counted once)
    duplicate_rows: int = 0

    def evidence(self) -> Evidence:
        return {
            "studies": self.studies,
            "instances": self.instances,
            "patients": self.patients,
            "pages": self.pages,
            "duplicate_rows": self.duplicate_rows,
            "truncated": self.truncated,
            "study_year_min": self.year_min,
            "study_year_max": self.year_max,
            "path": self.base_template,
        }


__all__ = ["GENERIC_DICOMWEB", "VERSION_OK", "FingerprintResult", "QidoResult", "QidoStatus"]
