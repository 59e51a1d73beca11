"""What every renderer gets: the report, its trend, accepted risks and first-seen dates.

The entry point that picks a renderer is :func:`pacsradar.report.dispatch.render`: the renderers
import this module, so this module imports none of them (no import circle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pacsradar.models import Finding, ScanReport, Severity
from pacsradar.report.exposure import Exposure, exposure_of
from pacsradar.report.fleets import Fleets, fleets_of
from pacsradar.store.views import AcceptedRisk, SeverityCounts, TrendPoint, accepted_for

if TYPE_CHECKING:
    from pacsradar.store.core import Store

from pacsradar.report.formats import FORMATS

EXTENSIONS: Mapping[str, str] = {
    "html": "html",
    "sarif": "sarif",
    "csv": "csv",
    "json": "json",
    "md": "md",
    "defectdojo": "defectdojo.json",
    "pdf": "pdf",
}


@dataclass(frozen=True)
class ReportContext:
    report: ScanReport
    #: findings and exposure of the earlier scans of the same scope, oldest first.
    trend: tuple[TrendPoint, ...] = ()
    accepted: tuple[AcceptedRisk, ...] = ()
    #: dedupe key -> when the store first saw the finding.
    first_seen: Mapping[str, datetime] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_store(cls, store: Store, scan_id: str | None = None) -> ReportContext:
        """The context of a stored scan (the newest when ``scan_id`` is None)."""
        from pacsradar.errors import StoreError

        scan_id = scan_id or store.latest_scan_id()
        if scan_id is None:
            raise StoreError("the store holds no scan yet")
        report = store.load_report(scan_id)
        summary = store.get_scan(scan_id)
        trend = [
            p for p in store.trend(scope=summary.scope_key, limit=60) if p.started_at <= report.started_at
        ]
        keys = {f.dedupe_key for f in report.findings}
        first_seen = {s.dedupe_key: s.first_seen for s in store.findings(status=None) if s.dedupe_key in keys}
        return cls(
            report=report,
            trend=tuple(trend),
            accepted=tuple(store.accepted_risks()),
            first_seen=first_seen,
        )

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Worst first, then by endpoint."""
        return tuple(
            sorted(
                self.report.findings,
                key=lambda f: (-f.severity.rank, f.endpoint.host, f.endpoint.port, f.check_id),
            )
        )

    @property
    def exposure(self) -> Exposure:
        return exposure_of(self.report.findings)

    @property
    def fleets(self) -> Fleets:
        return fleets_of(self.report.results)

    @property
    def severity_counts(self) -> SeverityCounts:
        return SeverityCounts.of([f.severity for f in self.report.findings])

    def accepted_for(self, finding: Finding) -> AcceptedRisk | None:
        return accepted_for(finding, self.accepted, self.generated_at)

    def worst(self) -> Severity | None:
        return self.report.worst_severity()


__all__ = ["EXTENSIONS", "FORMATS", "ReportContext"]
