"""A scan's store writer on the standard library's sqlite3: no SQLAlchemy unless it is needed.

Importing SQLAlchemy and mapping the schema costs about 0.4 s, most of a closed-port scan
(issue 11). A scan whose store is a SQLite file already at :data:`SCHEMA_REVISION` starts with
this writer: it records the scan, its refused or silent endpoints and the endpoints that
answered (through :mod:`~pacsradar.store.bulk`, the full store's own batch writer) with the same
rows, formats and transactions as :class:`~pacsradar.store.core.Store` (tests compare the two
row for row). Anything more (a refused port whose finding to resolve, accepted risks in force,
another backend, a migration) goes to the full store, opened on first need on the same
database; from then on every call does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Container, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacsradar.errors import StoreError
from pacsradar.models import ScanReport, ScanStats, TargetResult
from pacsradar.store.plain import (
    SCHEMA_REVISION,
    ScanWriter,
    UnreachableRow,
    _now,
    _sqlite_pragmas,
    _t,
    _tj,
    _to,
    pack_dead,
    plain_sqlite_path,
    scope_key,
)

if TYPE_CHECKING:
    from pacsradar.store.core import Store
    from pacsradar.store.views import AcceptedRisk

#: SQLAlchemy's SQLite DATETIME storage format (naive UTC; schema.UTCDateTime drops the offset).
_DT = "%Y-%m-%d %H:%M:%S.%f"
_RUNNING, _FINISHED, _INTERRUPTED = "running", "finished", "interrupted"  # views.ScanStatus


def _dt(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(_DT)


def _parse_dt(text: str) -> datetime:
    return datetime.strptime(text, _DT).replace(tzinfo=UTC)


def _json(value: Any) -> str:
    # SQLAlchemy's JSON type on SQLite: json.dumps with its defaults.
    return json.dumps(value)


def open_scan_writer(url: str | None) -> ScanWriter:
    """The writer for a new scan: :class:`LiteStore` when ``url`` is a current SQLite file,
    else the full store (which creates and migrates as needed)."""
    from pacsradar.store.plain import db_url

    url = db_url(url)
    path = plain_sqlite_path(url)
    if path is not None and path.is_file():
        lite = LiteStore.open(url, path)
        if lite is not None:
            return lite
    from pacsradar.store.core import Store

    return Store(url)


class LiteStore:
    """Implements :class:`~pacsradar.store.plain.ScanWriter` on sqlite3 (see the module)."""

    def __init__(self, url: str, conn: sqlite3.Connection) -> None:
        self.url = url
        self._conn = conn
        self._full: Store | None = None

    @classmethod
    def open(cls, url: str, path: Path) -> LiteStore | None:
        """The writer, or ``None`` if the database is not at the current revision (or not ours)."""
        try:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            _sqlite_pragmas(conn)
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            conn.close()
            return None
        if row is None or row[0] != SCHEMA_REVISION:
            conn.close()
            return None
        return cls(url, conn)

    # -- the full store, once something needs it -------------------------------------------------

    @property
    def upgraded(self) -> bool:
        """Whether the full store took over (a refused port's finding to resolve, a risk in force)."""
        return self._full is not None

    def full(self) -> Store:
        if self._full is None:
            from pacsradar.store.core import Store

            self._full = Store(self.url)
        return self._full

    @property
    def display_url(self) -> str:
        return self.url  # a SQLite file URL carries no password

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"store operation failed ({type(exc).__name__})") from exc

    # -- ScanWriter --------------------------------------------------------------------------

    def begin_scan(
        self,
        scan_id: str,
        *,
        scope: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        total: int | None = None,
    ) -> None:
        if self._full is not None:
            self._full.begin_scan(scan_id, scope=scope, options=options, total=total)
            return
        with self._tx() as conn:
            row = conn.execute("SELECT total, scope FROM scans WHERE id = ?", (scan_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO scans (id, tool, version, started_at, finished_at, scope, scope_key,"
                    " options, stats, total, status) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                    (
                        scan_id,
                        "pacsradar",
                        _version(),
                        _dt(_now()),
                        _json([_t(x) for x in scope]),
                        scope_key(scope),
                        _json(_tj(dict(options or {}))),
                        _json(ScanStats().model_dump()),
                        total,
                        _RUNNING,
                    ),
                )
                return
            old_total, old_scope = row
            conn.execute("UPDATE scans SET status = ?, finished_at = NULL WHERE id = ?", (_RUNNING, scan_id))
            if old_total is None:
                conn.execute("UPDATE scans SET total = ? WHERE id = ?", (total, scan_id))
            if scope and not json.loads(old_scope):
                conn.execute(
                    "UPDATE scans SET scope = ?, scope_key = ? WHERE id = ?",
                    (_json([_t(x) for x in scope]), scope_key(scope), scan_id),
                )

    def hosts_with_open_findings(self) -> frozenset[str]:
        if self._full is not None:
            return self._full.hosts_with_open_findings()
        try:
            rows = self._conn.execute("SELECT DISTINCT host FROM findings WHERE status = 'open'").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store read failed ({type(exc).__name__})") from exc
        return frozenset(str(r[0]) for r in rows)

    def record_result(self, scan_id: str, result: TargetResult) -> None:
        self.record_results(scan_id, [result])

    def record_results(self, scan_id: str, results: Sequence[TargetResult], *, fresh: bool = False) -> None:
        # The same bulk writer as the full store's, on this connection (issue 26): an endpoint
        # that answers no longer costs the SQLAlchemy import and ORM objects per row.
        if self._full is not None:
            self._full.record_results(scan_id, results, fresh=fresh)
            return
        if not results:
            return
        from pacsradar.store.bulk import Db, write_results

        with self._tx() as conn:
            write_results(Db.of_sqlite3(conn), scan_id, results, fresh=fresh)

    def record_unreachable_rows(
        self,
        scan_id: str,
        rows: Sequence[UnreachableRow],
        *,
        fresh: bool = False,
        open_hosts: Container[str] | None = None,
    ) -> None:
        # Only the plain case here: endpoints new to this scan on hosts without open findings.
        # Replacing earlier rows, or resolving a finding, is the full store's job.
        simple = fresh and open_hosts is not None and not any(r[0] in open_hosts for r in rows)
        if self._full is not None or not simple:
            self.full().record_unreachable_rows(scan_id, rows, fresh=fresh, open_hosts=open_hosts)
            return
        if not rows:
            return
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM scans WHERE id = ?", (scan_id,)).fetchone() is None:
                raise StoreError("record_unreachable before begin_scan for this scan id")
            groups, plain = pack_dead(rows)  # columns where they can (issue 26)
            conn.executemany(
                "INSERT INTO dead_groups (scan_id, protocol, error, started_at, duration_ms, clean, count,"
                " hosts, ports) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (scan_id, proto, err, _dt(at), float(ms), int(clean), n, hosts, ports)
                    for proto, err, at, ms, clean, n, hosts, ports in groups
                ],
            )
            conn.executemany(
                "INSERT INTO scan_results (scan_id, host, port, protocol, service_id, reachable,"
                " service, product, error, started_at, duration_ms, clean)"
                " VALUES (?, ?, ?, ?, NULL, 0, NULL, NULL, ?, ?, ?, ?)",
                [
                    (scan_id, _t(h), p, proto, _to(err), _dt(at), float(ms), int(clean))
                    for h, p, proto, err, at, ms, clean in plain
                ],
            )

    def set_scan_option(self, scan_id: str, key: str, value: str) -> None:
        if self._full is not None:
            self._full.set_scan_option(scan_id, key, value)
            return
        with self._tx() as conn:
            row = conn.execute("SELECT options FROM scans WHERE id = ?", (scan_id,)).fetchone()
            if row is None:
                raise StoreError("set_scan_option before begin_scan for this scan id")
            options = json.loads(row[0]) if row[0] else {}
            options[key] = _t(value)
            conn.execute("UPDATE scans SET options = ? WHERE id = ?", (_json(options), scan_id))

    def finish_scan(self, report: ScanReport) -> None:
        """Close the scan: the same counts and fields as ``Store.finish_scan``."""
        if self._full is not None:
            self._full.finish_scan(report)
            return
        with self._tx() as conn:
            row = conn.execute(
                "SELECT total, started_at, options FROM scans WHERE id = ?", (report.scan_id,)
            ).fetchone()
            if row is None:
                raise StoreError("finish_scan before begin_scan for this scan id")
            old_total, started_text, old_options = row
            done, reachable, filtered = conn.execute(
                "SELECT count(*), coalesce(sum(reachable = 1), 0),"
                " coalesce(sum(reachable = 0 AND error LIKE 'connect did not complete%'), 0)"
                " FROM scan_results WHERE scan_id = ?",
                (report.scan_id,),
            ).fetchone()
            dead, dead_filtered = conn.execute(
                "SELECT coalesce(sum(count), 0), coalesce(sum(CASE WHEN error LIKE"
                " 'connect did not complete%' THEN count ELSE 0 END), 0) FROM dead_groups WHERE scan_id = ?",
                (report.scan_id,),
            ).fetchone()
            done, filtered = done + dead, filtered + dead_filtered
            errored = conn.execute(
                "SELECT count(DISTINCT a.result_id) FROM attempts a JOIN scan_results r"
                " ON r.id = a.result_id WHERE r.scan_id = ? AND r.reachable = 1 AND a.status = 'error'",
                (report.scan_id,),
            ).fetchone()[0]
            rs = report.stats
            filtered = max(filtered, rs.endpoints_filtered)
            done = max(done, rs.endpoints_done)
            total = max(old_total or 0, rs.endpoints_total, done)
            stats = ScanStats(
                endpoints_total=total,
                endpoints_done=done,
                endpoints_open=max(reachable, rs.endpoints_open),
                endpoints_closed=max(done - reachable - filtered, rs.endpoints_closed),
                endpoints_filtered=filtered,
                endpoints_error=max(errored, rs.endpoints_error),
                interrupted=rs.interrupted,
            ).model_dump()
            started = min(_parse_dt(started_text), report.started_at)
            fields: dict[str, Any] = {
                "total": total,
                "stats": _json(stats),
                "started_at": _dt(started),
                "finished_at": _dt(report.finished_at or _now()),
                "status": _INTERRUPTED if rs.interrupted else _FINISHED,
                "version": report.version,
                "tool": report.tool,
            }
            if report.scope:
                fields["scope"] = _json([_t(x) for x in report.scope])
                fields["scope_key"] = scope_key(report.scope)
            if report.options and not json.loads(old_options):
                fields["options"] = _json(_tj(dict(report.options)))
            assignments = ", ".join(f"{name} = ?" for name in fields)  # our own column names
            conn.execute(f"UPDATE scans SET {assignments} WHERE id = ?", (*fields.values(), report.scan_id))  # noqa: S608

    def accepted_risks(self, *, active_at: datetime | None = None) -> list[AcceptedRisk]:
        if self._full is None:
            query = "SELECT count(*) FROM accepted_risks"
            args: tuple[str, ...] = ()
            if active_at is not None:
                query += " WHERE expires_at > ?"
                args = (_dt(active_at),)
            try:
                (count,) = self._conn.execute(query, args).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"store read failed ({type(exc).__name__})") from exc
            if not count:
                return []
        return self.full().accepted_risks(active_at=active_at)

    def close(self) -> None:
        self._conn.close()
        if self._full is not None:
            self._full.close()

    def __enter__(self) -> LiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _version() -> str:
    from pacsradar import __version__

    return __version__


__all__ = ["LiteStore", "open_scan_writer"]
