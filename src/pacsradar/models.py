"""The findings schema: typed, frozen pydantic models shared by every check, store and report.

Rules that keep the tool from becoming the leak (see README "PHI safety"):

* ``Finding.evidence`` and ``Attempt.details`` hold counts, attribute keywords, year ranges,
  booleans and keyed hashes. Never a PHI value.
* Strings that come from a scanned peer (AE titles, banners, product names) pass through
  :func:`pacsradar.phi.peer_text` first, which bounds and de-controls them. Renderers still escape
  them for their own output format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EvidenceValue = int | float | bool | str | list[str] | list[int] | None
Evidence = dict[str, EvidenceValue]


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class AttemptStatus(StrEnum):
    """sslyze-style envelope: 'could not test' (error/skipped) never reads as 'safe'."""

    COMPLETED = "completed"
    ERROR = "error"
    SKIPPED = "skipped"


Protocol = Literal["dicom", "dicom-tls", "http", "https", "ftp", "smb", "file", "unknown"]


#: One set of field names per distinct content, shared by every frozen instance (see _Frozen).
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    def model_post_init(self, context: Any, /) -> None:
        # Issue 26: pydantic gives each instance its own set of the names it was given (~730
        # bytes); a dense scan holds ~30 models per live host, so those sets were most of its
        # memory. A frozen model never adds to it (model_copy copies it first), so instances
        # that were given the same names share one.
        names = self.__pydantic_fields_set__
        shared = _FIELDS_SETS.setdefault(frozenset(names), names)
        if shared is not names:
            object.__setattr__(self, "__pydantic_fields_set__", shared)


class Endpoint(_Frozen):
    """One network endpoint (or local path) that was audited."""

    host: str
    port: int = 0
    protocol: Protocol = "unknown"

    @property
    def label(self) -> str:
        if self.protocol == "file":
            return self.host
        if ":" in self.host:  # IPv6 literal
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class Reference(_Frozen):
    title: str
    url: str | None = None


class Holdings(_Frozen):
    """Keyed hashes (never values) of what one exposure finding proved reachable.

    They let the estate headline count distinct patients and studies across services and
    hosts (:mod:`pacsradar.report.exposure`). Per-scan random keys make them meaningless
    outside the scan (``--link-key`` links scans). ``study_images`` runs parallel to
    ``studies``: the images the service reported for that study, -1 where it did not say.

    ``patient_records`` are (hash of the normalised PatientID, hash of the normalised
    IssuerOfPatientID or "" when the service sent none): two hashes, so that the estate links a
    patient across services that do and do not send the issuer (:mod:`pacsradar.identity`).
    ``patients`` holds the single PatientID (+ issuer) hashes of scans stored before that; new
    holdings leave it empty. ``source`` says what kind of service held them: "archive" (stored
    studies: C-FIND, QIDO-RS, shares) or "worklist" (scheduled work: Modality Worklist, UPS), for
    the headline's breakdown (issue 24); a label for reports, never part of a key.
    """

    patients: tuple[str, ...] = ()
    patient_records: tuple[tuple[str, str], ...] = ()
    studies: tuple[str, ...] = ()
    study_images: tuple[int, ...] = ()
    truncated: bool = False
    source: str = "archive"


class Finding(_Frozen):
    check_id: str
    title: str
    severity: Severity
    endpoint: Endpoint
    summary: str = ""
    evidence: Evidence = Field(default_factory=dict)
    remediation: str = ""
    references: tuple[Reference, ...] = ()
    cwe: str | None = None
    product: str | None = None
    #: exposure findings only; kept out of every serialised finding (reports carry counts),
    #: persisted per scan by the store for the estate headline
    holdings: Holdings | None = Field(default=None, exclude=True, repr=False)

    @property
    def suspected_honeypot(self) -> bool:
        """Marked by DICOM-HONEYPOT-SUSPECT (score at or above --honeypot-threshold); the mark is
        evidence so the store, reports, SARIF and DefectDojo carry it (README "Honeypots")."""
        return self.evidence.get("suspected_honeypot") is True

    @property
    def dedupe_key(self) -> str:
        """Stable across scans: same check on the same endpoint is the same finding."""
        raw = "|".join((self.check_id, self.endpoint.host, str(self.endpoint.port), self.endpoint.protocol))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


class Attempt(_Frozen):
    """What happened when one check ran against one endpoint."""

    check: str
    status: AttemptStatus
    reason: str | None = None
    duration_ms: float = 0.0
    details: Evidence = Field(default_factory=dict)


class TargetResult(_Frozen):
    """Everything learnt about one endpoint."""

    endpoint: Endpoint
    reachable: bool
    service: str | None = None
    product: str | None = None
    attempts: tuple[Attempt, ...] = ()
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_ms: float = 0.0
    #: The Dask worker that produced this result (``--workers`` / ``--scheduler``); None locally.
    worker: str | None = None


#: The check name of a connect that timed out (engine.py's TCP gate): "could not test".
CONNECT_CHECK = "engine.connect"


def unreachable_attempts(error: str, timed_out: bool) -> tuple[Attempt, ...]:
    """The attempts of a refused (none) or timed-out (one error: could not test) endpoint."""
    if not timed_out:
        return ()
    return (Attempt(check=CONNECT_CHECK, status=AttemptStatus.ERROR, reason=f"ConnectTimeout: {error}"),)


@dataclass(frozen=True, slots=True)
class UnreachableGroup:
    """Endpoints that refused, or never answered, with one error message, held as columns.

    Nearly every endpoint of a sweep is one of these. A Dask worker returns them this way and
    the store writes them as rows, so a dead endpoint never costs a :class:`TargetResult` on
    the client (issue 14). :meth:`results` gives exactly the records the local engine builds
    for them (engine.py's gate), for observers that want one record per endpoint.
    """

    error: str
    timed_out: bool
    hosts: tuple[str, ...]
    ports: tuple[int, ...]
    started_at: datetime
    worker: str | None = None

    def __len__(self) -> int:
        return len(self.hosts)

    @property
    def clean(self) -> bool:
        """Refused: re-tested and exposing nothing. Timed out: could not test (store/base.py)."""
        return not self.timed_out

    def results(self) -> Iterator[TargetResult]:
        attempts = unreachable_attempts(self.error, self.timed_out)
        for host, port in zip(self.hosts, self.ports, strict=True):
            yield TargetResult(
                endpoint=Endpoint(host=host, port=port),
                reachable=False,
                error=self.error,
                attempts=attempts,
                started_at=self.started_at,
                worker=self.worker,
            )


class ScanStats(_Frozen):
    endpoints_total: int = 0
    endpoints_done: int = 0
    endpoints_open: int = 0
    endpoints_closed: int = 0  # refused (RST)
    endpoints_filtered: int = 0  # no answer within the connect timeout, or unreachable
    endpoints_error: int = 0  # open, but could not be (fully) tested
    interrupted: bool = False


class ScanReport(_Frozen):
    scan_id: str
    tool: str = "pacsradar"
    version: str
    started_at: datetime
    finished_at: datetime | None = None
    scope: tuple[str, ...] = ()
    options: dict[str, EvidenceValue] = Field(default_factory=dict)
    stats: ScanStats = Field(default_factory=ScanStats)
    results: tuple[TargetResult, ...] = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for r in self.results for f in r.findings)

    def __repr__(self) -> str:
        # Cheap on purpose: asyncio may repr a returned report at loop shutdown, and a full
        # pydantic repr of thousands of results costs seconds.
        return f"ScanReport(scan_id={self.scan_id!r}, results={len(self.results)})"

    def worst_severity(self) -> Severity | None:
        found = self.findings
        if not found:
            return None
        return max((f.severity for f in found), key=lambda s: s.rank)


Port = Annotated[int, Field(ge=0, le=65535)]
