"""Reads: stored scans, findings as they stand, their history, assets and trends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pacsradar.doneset import DoneSet
from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    Finding,
    Holdings,
    Reference,
    ScanReport,
    ScanStats,
    Severity,
    TargetResult,
)
from pacsradar.report.exposure import exposure_of
from pacsradar.store.closed import dead_groups, dead_results
from pacsradar.store.plain import _now
from pacsradar.store.risks import RisksMixin
from pacsradar.store.schema import (
    AssetRow,
    DeadGroupRow,
    FindingEventRow,
    FindingRow,
    OccurrenceRow,
    ScanResultRow,
    ScanRow,
)
from pacsradar.store.views import (
    AssetSummary,
    FindingEvent,
    FindingState,
    FindingStatus,
    ScanStatus,
    ScanSummary,
    ServiceSummary,
    SeverityCounts,
    TrendPoint,
    accepted_for,
)


class QueriesMixin(RisksMixin):
    """Reads of stored scans, findings, assets and trends."""

    def resume(self, scan_id: str) -> DoneSet:
        """The ``(host, port)`` pairs a stored scan has already finished: a resumed scan skips
        them. No model per row, rows streamed, a compact set: a sweep of a million finished
        endpoints reopens in seconds and in tens of megabytes."""
        done = DoneSet()
        with self._read() as s:
            self._scan_row(s, scan_id)
            # Core, not ORM: rows, not entities (the ORM's row loading doubled the time).
            result = s.connection().execute(
                select(ScanResultRow.host, ScanResultRow.port)
                .where(ScanResultRow.scan_id == scan_id)
                .execution_options(yield_per=20_000)
            )
            add = done.add
            for host, port in result:
                add(host, port)
            for hosts, ports, _ in dead_groups(s, scan_id):  # stored as columns (issue 26)
                for host, port in zip(hosts, ports, strict=True):
                    add(host, port)
        return done

    def hosts_with_open_findings(self) -> frozenset[str]:
        """Hosts with at least one open finding: the only ones a refused port can resolve."""
        with self._read() as s:
            rows = s.scalars(
                select(FindingRow.host).where(FindingRow.status == FindingStatus.OPEN.value).distinct()
            ).all()
        return frozenset(rows)

    def load_report(self, scan_id: str, *, include_unreachable: bool = False) -> ScanReport:
        """Rebuild the :class:`ScanReport` of a stored scan, as the engine returned it."""
        with self._read() as s:
            row = self._scan_row(s, scan_id)
            query = (
                select(ScanResultRow)
                .where(ScanResultRow.scan_id == scan_id)
                .options(selectinload(ScanResultRow.attempts), selectinload(ScanResultRow.occurrences))
            )
            if not include_unreachable:
                query = query.where(ScanResultRow.reachable.is_(True))
            rows = sorted(s.scalars(query).all(), key=lambda r: (r.host, r.port, r.id))
            results = [_target_result(r) for r in rows]
            if include_unreachable:  # and those stored as columns, in the same order
                results = sorted(
                    [*results, *dead_results(s, scan_id)], key=lambda r: (r.endpoint.host, r.endpoint.port)
                )
            return ScanReport(
                scan_id=row.id,
                tool=row.tool,
                version=row.version,
                started_at=row.started_at,
                finished_at=row.finished_at,
                scope=tuple(row.scope),
                options=dict(row.options),
                stats=ScanStats.model_validate(row.stats),
                results=tuple(results),
            )

    def scan_ids(self) -> list[str]:
        with self._read() as s:
            return list(s.scalars(select(ScanRow.id).order_by(ScanRow.started_at.desc())))

    def latest_scan_id(self, *, scope: str | None = None) -> str | None:
        """The newest scan, optionally of one scope key."""
        with self._read() as s:
            q = select(ScanRow.id).order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
            if scope is not None:
                q = q.where(ScanRow.scope_key == scope)
            return s.scalars(q.limit(1)).first()

    def previous_scan_id(self, scan_id: str) -> str | None:
        """The scan of the same scope that started just before this one."""
        with self._read() as s:
            row = self._scan_row(s, scan_id)
            return s.scalars(
                select(ScanRow.id)
                .where(
                    ScanRow.scope_key == row.scope_key,
                    ScanRow.id != row.id,
                    ScanRow.started_at <= row.started_at,
                )
                .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
                .limit(1)
            ).first()

    def list_scans(self, *, limit: int = 50, scope: str | None = None) -> list[ScanSummary]:
        with self._read() as s:
            q = select(ScanRow).order_by(ScanRow.started_at.desc(), ScanRow.id.desc()).limit(limit)
            if scope is not None:
                q = q.where(ScanRow.scope_key == scope)
            return self._summaries(s, list(s.scalars(q).all()))

    def scan_ids_starting(self, prefix: str, *, limit: int = 6) -> list[str]:
        """Stored scan ids that start with ``prefix`` (newest first): a unique one names a scan,
        as a short commit hash does in git."""
        with self._read() as s:
            q = (
                select(ScanRow.id)
                .where(ScanRow.id.startswith(prefix, autoescape=True))
                .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
                .limit(limit)
            )
            return [str(x) for x in s.scalars(q)]

    def get_scan(self, scan_id: str) -> ScanSummary:
        with self._read() as s:
            return self._summaries(s, [self._scan_row(s, scan_id)])[0]

    def scan_options(self, scan_id: str) -> dict[str, Any]:
        """The options a scan was stored with (its plan among them), without loading results."""
        with self._read() as s:
            return dict(self._scan_row(s, scan_id).options or {})

    def _summaries(self, s: Session, rows: list[ScanRow]) -> list[ScanSummary]:
        found = self._findings_by_scan(s, [r.id for r in rows])
        live = self._live_stats(s, [r for r in rows if r.status == ScanStatus.RUNNING.value])
        return [
            ScanSummary(
                scan_id=r.id,
                started_at=r.started_at,
                finished_at=r.finished_at,
                status=ScanStatus(r.status),
                scope=tuple(r.scope),
                scope_key=r.scope_key,
                stats=live.get(r.id) or ScanStats.model_validate(r.stats),
                findings=SeverityCounts.of([f.severity for f in found.get(r.id, [])]),
                exposure=exposure_of(found.get(r.id, [])),
            )
            for r in rows
        ]

    @staticmethod
    def _live_stats(s: Session, rows: list[ScanRow]) -> dict[str, ScanStats]:
        """Stats of scans still running (or killed): endpoints stored so far of the planned total.

        A finished scan's stats are written when it ends; before that they are zero, and a scan
        killed mid-way would list as "0/0" although ``--resume`` finds its stored endpoints.
        """
        if not rows:
            return {}
        counted: dict[str, int] = {
            scan_id: int(n)
            for scan_id, n in s.execute(
                select(ScanResultRow.scan_id, func.count())
                .where(ScanResultRow.scan_id.in_([r.id for r in rows]))
                .group_by(ScanResultRow.scan_id)
            )
        }
        for scan_id, n in s.execute(
            select(DeadGroupRow.scan_id, func.sum(DeadGroupRow.count))
            .where(DeadGroupRow.scan_id.in_([r.id for r in rows]))
            .group_by(DeadGroupRow.scan_id)
        ):
            counted[scan_id] = counted.get(scan_id, 0) + int(n)
        return {
            r.id: ScanStats(endpoints_total=r.total or 0, endpoints_done=counted.get(r.id, 0)) for r in rows
        }

    def trend(self, *, scope: str | None = None, limit: int = 30) -> list[TrendPoint]:
        """Findings and exposure per scan, oldest first, for the trend charts."""
        scans = self.list_scans(limit=limit, scope=scope)
        return [
            TrendPoint(scan_id=x.scan_id, started_at=x.started_at, findings=x.findings, exposure=x.exposure)
            for x in reversed(scans)
        ]

    def _findings_by_scan(self, s: Session, scan_ids: Sequence[str]) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        if not scan_ids:
            return out
        rows = s.scalars(
            select(OccurrenceRow).where(OccurrenceRow.scan_id.in_(list(scan_ids))).order_by(OccurrenceRow.id)
        ).all()
        for o in rows:
            out.setdefault(o.scan_id, []).append(_finding(o))
        return out

    def scan_findings(self, scan_id: str) -> dict[str, Finding]:
        with self._read() as s:
            self._scan_row(s, scan_id)
            return {f.dedupe_key: f for f in self._findings_by_scan(s, [scan_id]).get(scan_id, [])}

    # -- reads: findings and assets ----------------------------------------------------------

    def findings(
        self,
        *,
        status: FindingStatus | None = FindingStatus.OPEN,
        severity: Severity | None = None,
        min_severity: Severity | None = None,
        check_id: str | None = None,
        host: str | None = None,
        limit: int = 1000,
        at: datetime | None = None,
    ) -> list[FindingState]:
        """Findings as they stand now (latest content), filtered, worst first."""
        with self._read() as s:
            q = select(FindingRow, OccurrenceRow).join(
                OccurrenceRow,
                (OccurrenceRow.finding_id == FindingRow.id)
                & (OccurrenceRow.scan_id == FindingRow.last_scan_id),
            )
            if status is not None:
                q = q.where(FindingRow.status == status.value)
            if severity is not None:
                q = q.where(FindingRow.severity == severity.value)
            if min_severity is not None:
                allowed = [x.value for x in Severity if x.rank >= min_severity.rank]
                q = q.where(FindingRow.severity.in_(allowed))
            if check_id:
                q = q.where(FindingRow.check_id == check_id)
            if host:
                q = q.where(FindingRow.host == host)
            rows = s.execute(q.order_by(FindingRow.id)).all()
        risks = self.accepted_risks()
        now = at or _now()
        states: dict[str, FindingState] = {}
        for frow, occ in rows:
            finding = _finding(occ)
            states[frow.dedupe_key] = FindingState(
                dedupe_key=frow.dedupe_key,
                status=FindingStatus(frow.status),
                first_seen=frow.first_seen,
                last_seen=frow.last_seen,
                resolved_at=frow.resolved_at,
                first_scan_id=frow.first_scan_id,
                last_scan_id=frow.last_scan_id,
                finding=finding,
                accepted_risk=accepted_for(finding, risks, now),
            )
        ordered = sorted(
            states.values(),
            key=lambda x: (-x.finding.severity.rank, x.finding.endpoint.host, x.finding.check_id),
        )
        return ordered[:limit]

    def finding_history(self, dedupe_key: str) -> list[FindingEvent]:
        with self._read() as s:
            rows = s.scalars(
                select(FindingEventRow)
                .join(FindingRow, FindingRow.id == FindingEventRow.finding_id)
                .where(FindingRow.dedupe_key == dedupe_key)
                .order_by(FindingEventRow.at, FindingEventRow.id)
            ).all()
            return [
                FindingEvent(scan_id=r.scan_id, kind=r.kind, severity=Severity(r.severity), at=r.at)
                for r in rows
            ]

    def assets(self) -> list[AssetSummary]:
        open_by_host: dict[str, list[Severity]] = {}
        with self._read() as s:
            for host, sev in s.execute(
                select(FindingRow.host, FindingRow.severity).where(
                    FindingRow.status == FindingStatus.OPEN.value
                )
            ):
                open_by_host.setdefault(host, []).append(Severity(sev))
            assets = s.scalars(
                select(AssetRow).options(selectinload(AssetRow.services)).order_by(AssetRow.host)
            ).all()
            return [
                AssetSummary(
                    host=a.host,
                    first_seen=a.first_seen,
                    last_seen=a.last_seen,
                    services=tuple(
                        ServiceSummary(
                            port=v.port,
                            protocol=v.protocol,
                            service=v.service,
                            product=v.product,
                            first_seen=v.first_seen,
                            last_seen=v.last_seen,
                        )
                        for v in sorted(a.services, key=lambda v: (v.port, v.protocol))
                    ),
                    open_findings=SeverityCounts.of(open_by_host.get(a.host, [])),
                )
                for a in assets
            ]


def _finding(o: OccurrenceRow) -> Finding:
    evidence = dict(o.evidence)
    raw = evidence.pop("_holdings", None)  # ingest.HOLDINGS_KEY: keyed hashes, for the headline
    return Finding(
        check_id=o.check_id,
        title=o.title,
        severity=Severity(o.severity),
        endpoint=Endpoint(host=o.host, port=o.port, protocol=o.protocol),  # type: ignore[arg-type]
        summary=o.summary,
        evidence=evidence,
        remediation=o.remediation,
        references=tuple(Reference.model_validate(r) for r in o.references),
        cwe=o.cwe,
        product=o.product,
        holdings=Holdings.model_validate(raw) if isinstance(raw, dict) else None,
    )


def _target_result(r: ScanResultRow) -> TargetResult:
    return TargetResult(
        endpoint=Endpoint(host=r.host, port=r.port, protocol=r.protocol),  # type: ignore[arg-type]
        reachable=r.reachable,
        service=r.service,
        product=r.product,
        attempts=tuple(
            Attempt(
                check=a.check,
                status=AttemptStatus(a.status),
                reason=a.reason,
                duration_ms=a.duration_ms,
                details=dict(a.details),
            )
            for a in r.attempts
        ),
        findings=tuple(_finding(o) for o in r.occurrences),
        error=r.error,
        started_at=r.started_at,
        duration_ms=r.duration_ms,
    )
