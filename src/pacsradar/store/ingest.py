"""Writes: scans begun and finished, endpoint results and every finding's life.

A scan's results arrive in batches (:meth:`IngestMixin.record_results`, one transaction each,
written by :mod:`~pacsradar.store.bulk` without an ORM object per row); the endpoints that never
answered by :mod:`~pacsradar.store.closed`. :meth:`IngestMixin.record_result` is the
one-endpoint ORM path the bulk writer is measured against (tests compare their rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pacsradar import __version__
from pacsradar.errors import StoreError
from pacsradar.models import (
    AttemptStatus,
    Endpoint,
    Finding,
    ScanReport,
    ScanStats,
    TargetResult,
)
from pacsradar.store.bulk import Db, write_results
from pacsradar.store.closed import ClosedMixin
from pacsradar.store.plain import (
    HOLDINGS_KEY,
    _is_clean,
    _now,
    _t,
    _tj,
    _to,
    evidence_hash,
    scope_key,
    with_holdings,
)
from pacsradar.store.schema import (
    AssetRow,
    AttemptRow,
    FindingRow,
    OccurrenceRow,
    ScanResultRow,
    ScanRow,
    ServiceRow,
)
from pacsradar.store.views import (
    FindingStatus,
    ScanStatus,
)

#: Results per transaction when a whole report is saved (an import).
SAVE_BATCH = 256


class IngestMixin(ClosedMixin):
    """Writes: scans begun and finished, endpoint results, findings' lives."""

    def begin_scan(
        self,
        scan_id: str,
        *,
        scope: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        total: int | None = None,
        started_at: datetime | None = None,
        version: str = __version__,
        tool: str = "pacsradar",
    ) -> None:
        """Record that a scan started, or that a stored scan is being resumed."""
        with self._tx() as s:
            row = s.get(ScanRow, scan_id)
            if row is None:
                s.add(
                    ScanRow(
                        id=scan_id,
                        tool=tool,
                        version=version,
                        started_at=started_at or _now(),
                        finished_at=None,
                        scope=[_t(x) for x in scope],
                        scope_key=scope_key(scope),
                        options=_tj(dict(options or {})),
                        stats=ScanStats().model_dump(),
                        total=total,
                        status=ScanStatus.RUNNING.value,
                    )
                )
                return
            row.status = ScanStatus.RUNNING.value
            row.finished_at = None
            if row.total is None:
                row.total = total
            if scope and not row.scope:
                row.scope = [_t(x) for x in scope]
                row.scope_key = scope_key(scope)

    def record_results(self, scan_id: str, results: Sequence[TargetResult], *, fresh: bool = False) -> None:
        """Store many endpoints' results in one transaction: the rows that
        :meth:`record_result` on each in turn writes (``fresh``: none was recorded in this scan
        before, so no earlier row is looked for)."""
        if not results:
            return
        with self._tx() as s:
            write_results(Db.of_sqlalchemy(s.connection()), scan_id, results, fresh=fresh)

    def record_result(self, scan_id: str, result: TargetResult) -> None:
        """Store one endpoint's result and update every finding's life. One transaction, on
        the ORM: the reference the bulk path (:meth:`record_results`) is tested against."""
        ep = result.endpoint
        with self._tx() as s:
            scan = s.get(ScanRow, scan_id)
            if scan is None:
                raise StoreError("record_result before begin_scan for this scan id")
            # Replaying an endpoint (a resume that redid it) replaces it: never duplicates.
            s.execute(
                delete(ScanResultRow).where(
                    ScanResultRow.scan_id == scan_id,
                    ScanResultRow.host == ep.host,
                    ScanResultRow.port == ep.port,
                    ScanResultRow.protocol == ep.protocol,
                )
            )
            at = result.started_at
            service_id = self._upsert_service(s, result) if result.reachable else None
            row = ScanResultRow(
                scan_id=scan_id,
                host=_t(ep.host),
                port=ep.port,
                protocol=ep.protocol,
                service_id=service_id,
                reachable=result.reachable,
                service=_to(result.service),
                product=_to(result.product),
                error=_to(result.error),
                started_at=at,
                duration_ms=result.duration_ms,
                clean=_is_clean(result),
            )
            s.add(row)
            s.flush()
            for i, a in enumerate(result.attempts):
                s.add(
                    AttemptRow(
                        result_id=row.id,
                        seq=i,
                        check=_t(a.check),
                        status=a.status.value,
                        reason=_to(a.reason),
                        duration_ms=a.duration_ms,
                        details=_tj(dict(a.details)),
                    )
                )
            seen: set[str] = set()
            for i, f in enumerate(result.findings):
                frow = self._track_finding(s, scan_id, f, at)
                seen.add(f.dedupe_key)
                s.add(
                    OccurrenceRow(
                        result_id=row.id,
                        scan_id=scan_id,
                        finding_id=frow.id,
                        dedupe_key=f.dedupe_key,
                        seq=i,
                        check_id=_t(f.check_id),
                        title=_t(f.title),
                        severity=f.severity.value,
                        host=_t(f.endpoint.host),
                        port=f.endpoint.port,
                        protocol=f.endpoint.protocol,
                        summary=_t(f.summary),
                        evidence=_tj(with_holdings(f)),
                        remediation=_t(f.remediation),
                        references=_tj([r.model_dump() for r in f.references]),
                        cwe=_to(f.cwe),
                        product=_to(f.product),
                    )
                )
            if row.clean:
                self._resolve_missing(s, scan_id, ep, seen, at)

    def _upsert_service(self, s: Session, result: TargetResult) -> int:
        ep = result.endpoint
        at = result.started_at
        asset = s.scalar(select(AssetRow).where(AssetRow.host == ep.host))
        if asset is None:
            asset = AssetRow(host=_t(ep.host), first_seen=at, last_seen=at)
            s.add(asset)
            s.flush()
        else:
            asset.first_seen = min(asset.first_seen, at)
            asset.last_seen = max(asset.last_seen, at)
        svc = s.scalar(
            select(ServiceRow).where(
                ServiceRow.asset_id == asset.id,
                ServiceRow.port == ep.port,
                ServiceRow.protocol == ep.protocol,
            )
        )
        if svc is None:
            svc = ServiceRow(
                asset_id=asset.id,
                port=ep.port,
                protocol=ep.protocol,
                service=_to(result.service),
                product=_to(result.product),
                first_seen=at,
                last_seen=at,
            )
            s.add(svc)
            s.flush()
        else:
            if at >= svc.last_seen:
                svc.service = _to(result.service) or svc.service
                svc.product = _to(result.product) or svc.product
            svc.first_seen = min(svc.first_seen, at)
            svc.last_seen = max(svc.last_seen, at)
        return svc.id

    def _track_finding(self, s: Session, scan_id: str, f: Finding, at: datetime) -> FindingRow:
        key = f.dedupe_key
        ev = evidence_hash(f.evidence)
        frow = s.scalar(select(FindingRow).where(FindingRow.dedupe_key == key))
        kind: str | None = None
        if frow is None:
            frow = FindingRow(
                dedupe_key=key,
                check_id=_t(f.check_id),
                host=_t(f.endpoint.host),
                port=f.endpoint.port,
                protocol=f.endpoint.protocol,
                title=_t(f.title),
                severity=f.severity.value,
                evidence_hash=ev,
                status=FindingStatus.OPEN.value,
                first_seen=at,
                last_seen=at,
                resolved_at=None,
                first_scan_id=scan_id,
                last_scan_id=scan_id,
                resolved_scan_id=None,
            )
            s.add(frow)
            s.flush()
            kind = "new"
        elif at < frow.last_seen:
            # An older scan stored late: it may move first_seen back, never the current state.
            if at < frow.first_seen:
                frow.first_seen = at
                frow.first_scan_id = scan_id
            return frow
        else:
            if frow.status == FindingStatus.RESOLVED.value:
                kind = "regressed"
            elif frow.last_scan_id != scan_id and (
                frow.severity != f.severity.value or frow.evidence_hash != ev
            ):
                kind = "changed"
            frow.status = FindingStatus.OPEN.value
            frow.resolved_at = None
            frow.resolved_scan_id = None
            frow.title = _t(f.title)
            frow.severity = f.severity.value
            frow.evidence_hash = ev
            frow.last_seen = at
            frow.last_scan_id = scan_id
        if kind is not None:
            self._event(s, frow, scan_id, kind, at)
        return frow

    def _resolve_missing(self, s: Session, scan_id: str, ep: Endpoint, seen: set[str], at: datetime) -> None:
        stale = s.scalars(
            select(FindingRow).where(
                FindingRow.host == ep.host,
                FindingRow.port == ep.port,
                FindingRow.protocol == ep.protocol,
                FindingRow.status == FindingStatus.OPEN.value,
                FindingRow.last_seen <= at,
            )
        ).all()
        for frow in stale:
            if frow.dedupe_key in seen or frow.last_scan_id == scan_id:
                continue
            frow.status = FindingStatus.RESOLVED.value
            frow.resolved_at = at
            frow.resolved_scan_id = scan_id
            self._event(s, frow, scan_id, "resolved", at)

    def finish_scan(self, report: ScanReport) -> None:
        """Close a scan: final status, scope, options and stats counted from what is stored."""
        with self._tx() as s:
            row = s.get(ScanRow, report.scan_id)
            if row is None:
                raise StoreError("finish_scan before begin_scan for this scan id")
            done = (
                s.scalar(
                    select(func.count()).select_from(ScanResultRow).where(ScanResultRow.scan_id == row.id)
                )
                or 0
            )
            reachable = (
                s.scalar(
                    select(func.count())
                    .select_from(ScanResultRow)
                    .where(ScanResultRow.scan_id == row.id, ScanResultRow.reachable.is_(True))
                )
                or 0
            )
            # "error" is could-not-test: open endpoints with a failed attempt. A silent port's
            # connect timeout is "filtered" (outcome.py), counted from our own error text.
            errored = (
                s.scalar(
                    select(func.count(func.distinct(AttemptRow.result_id)))
                    .join(ScanResultRow, ScanResultRow.id == AttemptRow.result_id)
                    .where(
                        ScanResultRow.scan_id == row.id,
                        ScanResultRow.reachable.is_(True),
                        AttemptRow.status == AttemptStatus.ERROR.value,
                    )
                )
                or 0
            )
            filtered = (
                s.scalar(
                    select(func.count())
                    .select_from(ScanResultRow)
                    .where(
                        ScanResultRow.scan_id == row.id,
                        ScanResultRow.reachable.is_(False),
                        ScanResultRow.error.like("connect did not complete%"),
                    )
                )
                or 0
            )
            dead, dead_filtered = self._dead_counts(s, row.id)
            done, filtered = done + dead, filtered + dead_filtered
            filtered = max(filtered, report.stats.endpoints_filtered)
            # Counted from what is stored (a resumed scan's report only covers its second
            # half), but never below what the report says (an imported engine report omits
            # the closed endpoints it did not keep).
            rs = report.stats
            done = max(done, rs.endpoints_done)
            total = max(row.total or 0, rs.endpoints_total, done)
            row.total = total
            row.stats = ScanStats(
                endpoints_total=total,
                endpoints_done=done,
                endpoints_open=max(reachable, rs.endpoints_open),
                endpoints_closed=max(done - reachable - filtered, rs.endpoints_closed),
                endpoints_filtered=filtered,
                endpoints_error=max(errored, rs.endpoints_error),
                interrupted=rs.interrupted,
            ).model_dump()
            row.started_at = min(row.started_at, report.started_at)
            row.finished_at = report.finished_at or _now()
            row.status = (ScanStatus.INTERRUPTED if report.stats.interrupted else ScanStatus.FINISHED).value
            row.version = report.version
            row.tool = report.tool
            if report.scope:
                row.scope = [_t(x) for x in report.scope]
                row.scope_key = scope_key(report.scope)
            if report.options and not row.options:
                row.options = _tj(dict(report.options))

    def save_report(self, report: ScanReport) -> None:
        """Store a whole report at once (an import, or a scan run without the observer)."""
        self.begin_scan(
            report.scan_id,
            scope=report.scope,
            options=dict(report.options),
            total=report.stats.endpoints_total or None,
            started_at=report.started_at,
            version=report.version,
            tool=report.tool,
        )
        results = report.results
        for i in range(0, len(results), SAVE_BATCH):
            self.record_results(report.scan_id, results[i : i + SAVE_BATCH])
        self.finish_scan(report)

    def delete_scan(self, scan_id: str) -> None:
        with self._tx() as s:
            row = s.get(ScanRow, scan_id)
            if row is None:
                raise StoreError("no such scan")
            s.delete(row)


__all__ = ["HOLDINGS_KEY", "SAVE_BATCH", "IngestMixin"]
