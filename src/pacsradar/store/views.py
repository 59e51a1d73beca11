"""Read models returned by the store: frozen pydantic, so the dashboard API documents them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from pacsradar.models import Finding, ScanStats, Severity
from pacsradar.report.exposure import Exposure


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScanStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"


class SeverityCounts(_View):
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    info: int = 0

    @classmethod
    def of(cls, severities: list[Severity]) -> SeverityCounts:
        counts = dict.fromkeys((s.value for s in Severity), 0)
        for s in severities:
            counts[s.value] += 1
        return cls(**counts)

    @property
    def total(self) -> int:
        return self.critical + self.high + self.medium + self.low + self.info

    def get(self, severity: Severity) -> int:
        return int(getattr(self, severity.value))


class ScanSummary(_View):
    scan_id: str
    started_at: datetime
    finished_at: datetime | None
    status: ScanStatus
    scope: tuple[str, ...]
    scope_key: str
    stats: ScanStats
    findings: SeverityCounts
    exposure: Exposure


class TrendPoint(_View):
    scan_id: str
    started_at: datetime
    findings: SeverityCounts
    exposure: Exposure


class ChangeKind(StrEnum):
    NEW = "new"
    RESOLVED = "resolved"
    CHANGED = "changed"
    REGRESSED = "regressed"
    NOT_RETESTED = "not_retested"


class FindingChange(_View):
    kind: ChangeKind
    dedupe_key: str
    before: Finding | None = None
    after: Finding | None = None

    @property
    def finding(self) -> Finding:
        found = self.after or self.before
        assert found is not None  # one side is always set
        return found


class ScanDiff(_View):
    base: str | None
    head: str
    new: tuple[FindingChange, ...] = ()
    resolved: tuple[FindingChange, ...] = ()
    changed: tuple[FindingChange, ...] = ()
    regressed: tuple[FindingChange, ...] = ()
    #: in the base, absent from the head, but the head could not re-test the endpoint cleanly:
    #: "could not test" never reads as "fixed".
    not_retested: tuple[FindingChange, ...] = ()
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.new or self.resolved or self.changed or self.regressed)

    def all_changes(self) -> tuple[FindingChange, ...]:
        return self.new + self.regressed + self.changed + self.resolved + self.not_retested


class FindingStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class FindingState(_View):
    """A finding's life across scans, with its latest content."""

    dedupe_key: str
    status: FindingStatus
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    first_scan_id: str
    last_scan_id: str
    finding: Finding
    accepted_risk: AcceptedRisk | None = None


class FindingEvent(_View):
    scan_id: str
    kind: str
    severity: Severity
    at: datetime


class ServiceSummary(_View):
    port: int
    protocol: str
    service: str | None
    product: str | None
    first_seen: datetime
    last_seen: datetime


class AssetSummary(_View):
    host: str
    first_seen: datetime
    last_seen: datetime
    services: tuple[ServiceSummary, ...] = ()
    open_findings: SeverityCounts = Field(default_factory=SeverityCounts)


class AcceptedRisk(_View):
    """A known, accepted finding: muted in alerts and marked in reports until it expires."""

    id: int
    check_id: str
    asset: str
    reason: str
    expires_at: datetime
    created_at: datetime

    def matches(self, finding: Finding, at: datetime) -> bool:
        if at >= self.expires_at:
            return False
        if self.check_id not in ("*", finding.check_id):
            return False
        return self.asset in ("*", finding.endpoint.host, finding.endpoint.label)


def accepted_for(
    finding: Finding, risks: tuple[AcceptedRisk, ...] | list[AcceptedRisk], at: datetime
) -> AcceptedRisk | None:
    return next((r for r in risks if r.matches(finding, at)), None)


FindingState.model_rebuild()

__all__ = [
    "AcceptedRisk",
    "AssetSummary",
    "ChangeKind",
    "FindingChange",
    "FindingEvent",
    "FindingState",
    "FindingStatus",
    "ScanDiff",
    "ScanStatus",
    "ScanSummary",
    "ServiceSummary",
    "SeverityCounts",
    "TrendPoint",
    "accepted_for",
]
