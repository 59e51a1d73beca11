"""Writes: scans begun and finished, endpoint results and every finding's life.

Each endpoint is written in its own transaction, so a killed scan keeps what it finished.
"""

from __future__ import annotations

import itertools
from collections.abc import Container, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, insert, select
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
from pacsradar.store.base import StoreBase, _chunks, evidence_hash
from pacsradar.store.plain import UnreachableRow, _is_clean, _now, _t, _tj, _to, scope_key
from pacsradar.store.schema import (
    AssetRow,
    AttemptRow,
    FindingEventRow,
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


class IngestMixin(StoreBase):
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

    def record_result(self, scan_id: str, result: TargetResult) -> None:
        """Store one endpoint's result and update every finding's life. One transaction."""
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
                        evidence=_tj(_with_holdings(f)),
                        remediation=_t(f.remediation),
                        references=_tj([r.model_dump() for r in f.references]),
                        cwe=_to(f.cwe),
                        product=_to(f.product),
                    )
                )
            if row.clean:
                self._resolve_missing(s, scan_id, ep, seen, at)

    def record_unreachable(
        self,
        scan_id: str,
        results: Sequence[TargetResult],
        *,
        fresh: bool = False,
        open_hosts: Container[str] | None = None,
    ) -> None:
        """Store many unreachable, finding-less endpoints in one transaction (the bulk of a
        sweep). Same effect as :meth:`record_result` on each, at a fraction of the cost.

        ``fresh``: the caller knows none of these endpoints was recorded in this scan before (a
        session whose endpoints are unique by construction), so no earlier row is looked for.
        ``open_hosts``: the hosts that had open findings when the scan began (from
        :meth:`hosts_with_open_findings`); only those can have a finding this batch resolves,
        so the others cost no query. Findings opened by this scan itself are never resolved by
        it. Without either, every batch is checked in full (idempotent re-recording).
        """
        if any(r.reachable or r.findings for r in results):
            raise StoreError("record_unreachable takes unreachable results without findings")
        self.record_unreachable_rows(
            scan_id,
            [
                (
                    r.endpoint.host,
                    r.endpoint.port,
                    r.endpoint.protocol,
                    r.error,
                    r.started_at,
                    r.duration_ms,
                    _is_clean(r),
                )
                for r in results
            ],
            fresh=fresh,
            open_hosts=open_hosts,
        )

    def record_unreachable_rows(
        self,
        scan_id: str,
        rows: Sequence[UnreachableRow],
        *,
        fresh: bool = False,
        open_hosts: Container[str] | None = None,
    ) -> None:
        """:meth:`record_unreachable` for rows ``(host, port, protocol, error, started_at,
        duration_ms, clean)``: what a Dask worker's grouped results become without one
        :class:`TargetResult` each (issue 14). ``clean``: refused (re-tested, exposes nothing),
        not timed out (could not test)."""
        if not rows:
            return
        if not fresh:  # the last record of an endpoint wins, as with record_result
            rows = list({(r[0], r[1], r[2]): r for r in rows}.values())
        with self._tx() as s:
            if s.get(ScanRow, scan_id) is None:
                raise StoreError("record_unreachable before begin_scan for this scan id")
            keys = {(r[0], r[1], r[2]) for r in rows} if not fresh else set()
            for chunk in _chunks(sorted({r[0] for r in rows})) if not fresh else ():
                old = [
                    rid
                    for rid, h, p, pr in s.execute(
                        select(
                            ScanResultRow.id,
                            ScanResultRow.host,
                            ScanResultRow.port,
                            ScanResultRow.protocol,
                        ).where(ScanResultRow.scan_id == scan_id, ScanResultRow.host.in_(chunk))
                    )
                    if (h, p, pr) in keys
                ]
                if old:
                    s.execute(delete(ScanResultRow).where(ScanResultRow.id.in_(old)))
            hosts, ports, protocols, errors, starts, durations, cleans = zip(*rows, strict=True)
            _insert_many(
                s,
                ScanResultRow.__table__,  # type: ignore[arg-type]
                {
                    "host": list(map(_t, hosts)),
                    "port": ports,
                    "protocol": protocols,
                    "error": list(map(_to, errors)),
                    "started_at": starts,
                    "duration_ms": durations,
                    "clean": cleans,
                },
                const={
                    "scan_id": scan_id,
                    "service_id": None,
                    "reachable": False,
                    "service": None,
                    "product": None,
                },
            )
            if open_hosts is None:
                suspects = sorted(set(hosts))
            else:
                suspects = sorted({h for h in hosts if h in open_hosts})
            if suspects:
                self._resolve_unreachable(s, scan_id, rows, suspects)

    def _resolve_unreachable(
        self, s: Session, scan_id: str, rows: Sequence[UnreachableRow], suspects: Sequence[str]
    ) -> None:
        """Resolve the open findings of endpoints that now refuse connections."""
        wanted = set(suspects)
        keys = {(r[0], r[1], r[2]): r for r in rows if r[0] in wanted}
        by_port = {(r[0], r[1]): r for r in keys.values()}
        for chunk in _chunks(suspects):
            stale = s.scalars(
                select(FindingRow).where(
                    FindingRow.status == FindingStatus.OPEN.value, FindingRow.host.in_(chunk)
                )
            ).all()
            for frow in stale:
                # A refused port has no protocol ("unknown"); it re-tests whatever ran there.
                r = keys.get((frow.host, frow.port, frow.protocol)) or by_port.get((frow.host, frow.port))
                if r is None or frow.last_seen > r[4] or frow.last_scan_id == scan_id:
                    continue
                if not r[6]:
                    continue  # timed out: not re-tested, so not resolved either
                frow.status = FindingStatus.RESOLVED.value
                frow.resolved_at = r[4]
                frow.resolved_scan_id = scan_id
                self._event(s, frow, scan_id, "resolved", r[4])

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

    @staticmethod
    def _event(s: Session, frow: FindingRow, scan_id: str, kind: str, at: datetime) -> None:
        exists = s.scalar(
            select(FindingEventRow.id).where(
                FindingEventRow.finding_id == frow.id,
                FindingEventRow.scan_id == scan_id,
                FindingEventRow.kind == kind,
            )
        )
        if exists is None:
            s.add(
                FindingEventRow(finding_id=frow.id, scan_id=scan_id, kind=kind, severity=frow.severity, at=at)
            )

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
        for result in report.results:
            self.record_result(report.scan_id, result)
        self.finish_scan(report)

    def delete_scan(self, scan_id: str) -> None:
        with self._tx() as s:
            row = s.get(ScanRow, scan_id)
            if row is None:
                raise StoreError("no such scan")
            s.delete(row)


#: Occurrence evidence key under which an exposure finding's keyed hashes are kept (never
#: values): the scan's distinct headline is recomputed from them (report/exposure.py).
HOLDINGS_KEY = "_holdings"


def _with_holdings(f: Finding) -> dict[str, Any]:
    evidence: dict[str, Any] = dict(f.evidence)
    if f.holdings is not None:
        evidence[HOLDINGS_KEY] = f.holdings.model_dump(mode="json")
    return evidence


def _insert_many(
    s: Session, table: Table, columns: dict[str, Sequence[Any]], *, const: dict[str, Any] | None = None
) -> None:
    """One DBAPI ``executemany`` for many rows of ``table``, given as columns (and constants),
    with the columns' own bind processors.

    A sweep writes tens of thousands of unreachable endpoints; SQLAlchemy's per-row parameter
    construction (ORM bulk insert or Core) was most of a closed port's cost (issue 14). The
    statement is compiled once for this dialect; each column goes through its type's bind
    processor as SQLAlchemy itself would do it, once per distinct value where values repeat (a
    batch shares its scan id, a few errors, a few start times).
    """
    const = const or {}
    if not columns:
        return
    n = len(next(iter(columns.values())))
    if n == 0:
        return
    conn = s.connection()
    dialect = conn.dialect
    names = [*columns, *const]
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    order = list(compiled.positiontup or ()) if compiled.positional else names
    ready: dict[str, Iterable[Any]] = {}
    for name in order:
        proc = table.c[name].type._cached_bind_processor(dialect)
        if name in const:
            value = const[name]
            ready[name] = itertools.repeat(proc(value) if proc else value, n)
            continue
        column = columns[name]
        if proc is None:
            ready[name] = column
            continue
        distinct = set(column)
        if len(distinct) * 4 <= n:
            memo = {v: proc(v) for v in distinct}
            ready[name] = map(memo.__getitem__, column)
        else:
            ready[name] = map(proc, column)
    values = zip(*(ready[name] for name in order), strict=False)
    named = not compiled.positional
    params: list[Any] = [dict(zip(order, v, strict=True)) for v in values] if named else list(values)
    conn.exec_driver_sql(str(compiled), params)
