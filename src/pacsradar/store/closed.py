"""Writes of endpoints that never answered (the bulk of a sweep), in batches (issue 14).

Rows, not records: a refused or silent endpoint travels as a tuple (:data:`UnreachableRow`)
and is written with one ``executemany`` per batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Container, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, delete, func, insert, select
from sqlalchemy.orm import Session

from pacsradar.errors import StoreError
from pacsradar.models import Endpoint, TargetResult
from pacsradar.store.base import StoreBase, _chunks
from pacsradar.store.plain import (
    DEAD_COLUMNS,
    UnreachableRow,
    _is_clean,
    _t,
    _to,
    pack_dead,
    unpack_hosts,
    unpack_ports,
)
from pacsradar.store.schema import DeadGroupRow, FindingEventRow, FindingRow, ScanResultRow, ScanRow
from pacsradar.store.views import FindingStatus


class ClosedMixin(StoreBase):
    """Writes of unreachable endpoints, and the finding events every write shares."""

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
            # Endpoints new to this scan go as columns where they can (dead_groups, issue 26);
            # a row each only for what cannot (names, IPv6, small groups) or may replace one.
            groups, plain = pack_dead(rows) if fresh else ([], rows)
            if groups:
                _insert_many(
                    s,
                    DeadGroupRow.__table__,  # type: ignore[arg-type]
                    dict(zip(DEAD_COLUMNS, zip(*groups, strict=True), strict=True)),
                    const={"scan_id": scan_id},
                )
            if plain:
                self._insert_rows(s, scan_id, plain)
            if open_hosts is None:
                suspects = sorted({r[0] for r in rows})
            elif not open_hosts:
                suspects = []  # nothing open anywhere: nothing to resolve
            else:
                suspects = sorted({r[0] for r in rows if r[0] in open_hosts})
            if suspects:
                self._resolve_unreachable(s, scan_id, rows, suspects)

    @staticmethod
    def _dead_counts(s: Session, scan_id: str) -> tuple[int, int]:
        """Endpoints a scan stored as columns (dead_groups), and how many of them are silent."""
        silent = case((DeadGroupRow.error.like("connect did not complete%"), DeadGroupRow.count), else_=0)
        done, filtered = s.execute(
            select(func.coalesce(func.sum(DeadGroupRow.count), 0), func.coalesce(func.sum(silent), 0)).where(
                DeadGroupRow.scan_id == scan_id
            )
        ).one()
        return int(done), int(filtered)

    @staticmethod
    def _insert_rows(s: Session, scan_id: str, rows: Sequence[UnreachableRow]) -> None:
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


def dead_groups(s: Session, scan_id: str) -> Iterator[tuple[list[str], tuple[int, ...], DeadGroupRow]]:
    """A scan's dead endpoints stored as columns: (hosts, ports, the group's row)."""
    for g in s.scalars(select(DeadGroupRow).where(DeadGroupRow.scan_id == scan_id).order_by(DeadGroupRow.id)):
        yield unpack_hosts(bytes(g.hosts)), unpack_ports(bytes(g.ports)), g


def dead_results(s: Session, scan_id: str) -> Iterator[TargetResult]:
    """The same, as the unreachable results their ``scan_results`` rows would read back as."""
    for hosts, ports, g in dead_groups(s, scan_id):
        for h, p in zip(hosts, ports, strict=True):
            yield TargetResult(
                endpoint=Endpoint(host=h, port=p, protocol=g.protocol),  # type: ignore[arg-type]
                reachable=False,
                error=g.error,
                started_at=g.started_at,
                duration_ms=g.duration_ms,
            )
