"""The findings store: every scan, every endpoint, every finding's life, on any SQLAlchemy URL.

Writes happen per endpoint, in their own transaction, as the engine reports them
(:class:`~pacsradar.store.observer.StoreObserver`), so a scan killed with SIGKILL keeps every
endpoint it had finished, and :meth:`Store.resume` tells the scanner which ones to skip.

Only what the models hold is stored (HACKING.md rule 1): the store adds our own bookkeeping
(ids, timestamps, statuses, hashes of evidence) and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from pacsradar import __version__
from pacsradar.errors import StoreError
from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    Evidence,
    Finding,
    Reference,
    ScanReport,
    ScanStats,
    Severity,
    TargetResult,
)
from pacsradar.report.exposure import exposure_of
from pacsradar.store.schema import (
    AcceptedRiskRow,
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
    AcceptedRisk,
    AssetSummary,
    ChangeKind,
    FindingChange,
    FindingEvent,
    FindingState,
    FindingStatus,
    ScanDiff,
    ScanStatus,
    ScanSummary,
    ServiceSummary,
    SeverityCounts,
    TrendPoint,
    accepted_for,
)

log = logging.getLogger(__name__)

ENV_DB = "PACSRADAR_DB"
MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x70616373  # "pacs": one migrator at a time on a shared PostgreSQL


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("pacsradar", appauthor=False)) / "pacsradar.db"


def default_db_url() -> str:
    """``$PACSRADAR_DB`` if set, else SQLite in the user data directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return env
    return f"sqlite:///{default_db_path()}"


def open_store(url: str | None = None) -> Store:
    """Open (and migrate) the store at ``url``, ``$PACSRADAR_DB`` or the default SQLite file."""
    return Store(url or None)


def scope_key(scope: Iterable[str]) -> str:
    """Scans of the same scope (same targets, in any order) share this key."""
    canon = "\n".join(sorted({s.strip() for s in scope if s.strip()}))
    return hashlib.sha256(canon.encode()).hexdigest()[:32]


def evidence_hash(evidence: Evidence) -> str:
    canon = json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def _t(value: str) -> str:
    # PostgreSQL text cannot hold NUL; peer_text() already replaces control characters, this
    # only guards strings that reached a model some other way. Same result on every backend.
    return value.replace("\x00", "\N{REPLACEMENT CHARACTER}")


def _to(value: str | None) -> str | None:
    return None if value is None else _t(value)


def _tj(value: Any) -> Any:
    if isinstance(value, str):
        return _t(value)
    if isinstance(value, list):
        return [_tj(v) for v in value]
    if isinstance(value, dict):
        return {_t(str(k)): _tj(v) for k, v in value.items()}
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _is_clean(result: TargetResult) -> bool:
    """Whether the endpoint was re-tested well enough for a missing finding to count as fixed.

    An endpoint that refuses connections exposes nothing, so it counts. One that timed out
    (an error attempt: filtered, or down for now) or answered but where a check or the engine
    errored does not: "could not test" never reads as "safe".
    """
    no_errors = all(a.status is not AttemptStatus.ERROR for a in result.attempts)
    if not result.reachable:
        return no_errors
    return result.error is None and no_errors


class Store:
    """The findings store. ``Store()`` opens the default SQLite file and migrates it to head."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = url or default_db_url()
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise StoreError("the database URL could not be parsed") from exc
        self.backend = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.backend == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                _prepare_sqlite_file(Path(database))
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: Engine = create_engine(parsed, **kwargs)
        if self.backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"could not migrate the store ({type(exc).__name__})") from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        try:
            with self._session.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"store operation failed ({type(exc).__name__})") from exc

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with self._session() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"store read failed ({type(exc).__name__})") from exc

    # -- writes ------------------------------------------------------------------------------

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
                        evidence=_tj(dict(f.evidence)),
                        remediation=_t(f.remediation),
                        references=_tj([r.model_dump() for r in f.references]),
                        cwe=_to(f.cwe),
                        product=_to(f.product),
                    )
                )
            if row.clean:
                self._resolve_missing(s, scan_id, ep, seen, at)

    def record_unreachable(self, scan_id: str, results: Sequence[TargetResult]) -> None:
        """Store many unreachable, finding-less endpoints in one transaction (the bulk of a
        sweep). Same effect as :meth:`record_result` on each, at a fraction of the cost."""
        if not results:
            return
        if any(r.reachable or r.findings for r in results):
            raise StoreError("record_unreachable takes unreachable results without findings")
        keys: dict[tuple[str, int, str], TargetResult] = {
            (r.endpoint.host, r.endpoint.port, r.endpoint.protocol): r for r in results
        }
        hosts = sorted({h for h, _, _ in keys})
        with self._tx() as s:
            if s.get(ScanRow, scan_id) is None:
                raise StoreError("record_unreachable before begin_scan for this scan id")
            for chunk in _chunks(hosts):
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
            s.execute(
                insert(ScanResultRow),
                [
                    {
                        "scan_id": scan_id,
                        "host": _t(r.endpoint.host),
                        "port": r.endpoint.port,
                        "protocol": r.endpoint.protocol,
                        "service_id": None,
                        "reachable": False,
                        "service": None,
                        "product": None,
                        "error": _to(r.error),
                        "started_at": r.started_at,
                        "duration_ms": r.duration_ms,
                        "clean": _is_clean(r),
                    }
                    for r in keys.values()
                ],
            )
            for chunk in _chunks(hosts):
                stale = s.scalars(
                    select(FindingRow).where(
                        FindingRow.status == FindingStatus.OPEN.value, FindingRow.host.in_(chunk)
                    )
                ).all()
                for frow in stale:
                    r = keys.get((frow.host, frow.port, frow.protocol))
                    if r is None or frow.last_seen > r.started_at or frow.last_scan_id == scan_id:
                        continue
                    if not _is_clean(r):
                        continue  # timed out: not re-tested, so not resolved either
                    frow.status = FindingStatus.RESOLVED.value
                    frow.resolved_at = r.started_at
                    frow.resolved_scan_id = scan_id
                    self._event(s, frow, scan_id, "resolved", r.started_at)

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
            errored = (
                s.scalar(
                    select(func.count(func.distinct(AttemptRow.result_id)))
                    .join(ScanResultRow, ScanResultRow.id == AttemptRow.result_id)
                    .where(
                        ScanResultRow.scan_id == row.id,
                        AttemptRow.status == AttemptStatus.ERROR.value,
                    )
                )
                or 0
            )
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
                endpoints_closed=max(done - reachable, rs.endpoints_closed),
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

    # -- reads: scans ------------------------------------------------------------------------

    def _scan_row(self, s: Session, scan_id: str) -> ScanRow:
        row = s.get(ScanRow, scan_id)
        if row is None:
            raise StoreError("no such scan")
        return row

    def resume(self, scan_id: str) -> frozenset[Endpoint]:
        """The endpoints a stored scan has already finished: a resumed scan skips them."""
        with self._read() as s:
            self._scan_row(s, scan_id)
            rows = s.execute(
                select(ScanResultRow.host, ScanResultRow.port, ScanResultRow.protocol).where(
                    ScanResultRow.scan_id == scan_id
                )
            ).all()
        return frozenset(Endpoint(host=h, port=p, protocol=pr) for h, p, pr in rows)  # type: ignore[arg-type]

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
            results = sorted(s.scalars(query).all(), key=lambda r: (r.host, r.port, r.id))
            return ScanReport(
                scan_id=row.id,
                tool=row.tool,
                version=row.version,
                started_at=row.started_at,
                finished_at=row.finished_at,
                scope=tuple(row.scope),
                options=dict(row.options),
                stats=ScanStats.model_validate(row.stats),
                results=tuple(_target_result(r) for r in results),
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

    def get_scan(self, scan_id: str) -> ScanSummary:
        with self._read() as s:
            return self._summaries(s, [self._scan_row(s, scan_id)])[0]

    def _summaries(self, s: Session, rows: list[ScanRow]) -> list[ScanSummary]:
        found = self._findings_by_scan(s, [r.id for r in rows])
        return [
            ScanSummary(
                scan_id=r.id,
                started_at=r.started_at,
                finished_at=r.finished_at,
                status=ScanStatus(r.status),
                scope=tuple(r.scope),
                scope_key=r.scope_key,
                stats=ScanStats.model_validate(r.stats),
                findings=SeverityCounts.of([f.severity for f in found.get(r.id, [])]),
                exposure=exposure_of(found.get(r.id, [])),
            )
            for r in rows
        ]

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

    # -- diff --------------------------------------------------------------------------------

    def diff(self, base: str | None = None, head: str | None = None) -> ScanDiff:
        """What changed between two scans.

        With no argument: the newest scan against the previous scan of the same scope. With one
        (``head``): that scan against the previous one of its scope. With none stored: an error.
        """
        if head is None and base is not None:
            base, head = None, base
        if head is None:
            head = self.latest_scan_id()
            if head is None:
                raise StoreError("the store holds no scan yet")
        if base is None:
            base = self.previous_scan_id(head)
        with self._read() as s:
            head_row = self._scan_row(s, head)
            if base is not None:
                self._scan_row(s, base)
            by_scan = self._findings_by_scan(s, [x for x in (base, head) if x])
            before = {f.dedupe_key: f for f in by_scan.get(base or "", [])} if base else {}
            after = {f.dedupe_key: f for f in by_scan.get(head, [])}
            coverage = {
                (h, p, pr): clean
                for h, p, pr, clean in s.execute(
                    select(
                        ScanResultRow.host,
                        ScanResultRow.port,
                        ScanResultRow.protocol,
                        ScanResultRow.clean,
                    ).where(ScanResultRow.scan_id == head)
                )
            }
            added = [k for k in after if k not in before]
            earlier: set[str] = set()
            if added:
                earlier = set(
                    s.scalars(
                        select(OccurrenceRow.dedupe_key)
                        .join(ScanRow, ScanRow.id == OccurrenceRow.scan_id)
                        .where(
                            OccurrenceRow.dedupe_key.in_(added),
                            ScanRow.id != head,
                            ScanRow.started_at < head_row.started_at,
                        )
                        .distinct()
                    )
                )
        new: list[FindingChange] = []
        regressed: list[FindingChange] = []
        for k in added:
            kind = ChangeKind.REGRESSED if k in earlier else ChangeKind.NEW
            change = FindingChange(kind=kind, dedupe_key=k, after=after[k])
            (regressed if k in earlier else new).append(change)
        resolved: list[FindingChange] = []
        not_retested: list[FindingChange] = []
        changed: list[FindingChange] = []
        unchanged = 0
        for k, f in before.items():
            if k in after:
                g = after[k]
                if g.severity != f.severity or evidence_hash(g.evidence) != evidence_hash(f.evidence):
                    changed.append(FindingChange(kind=ChangeKind.CHANGED, dedupe_key=k, before=f, after=g))
                else:
                    unchanged += 1
                continue
            ep = f.endpoint
            if coverage.get((ep.host, ep.port, ep.protocol)):
                resolved.append(FindingChange(kind=ChangeKind.RESOLVED, dedupe_key=k, before=f))
            else:
                not_retested.append(FindingChange(kind=ChangeKind.NOT_RETESTED, dedupe_key=k, before=f))
        order = _severity_order
        return ScanDiff(
            base=base,
            head=head,
            new=tuple(sorted(new, key=order)),
            resolved=tuple(sorted(resolved, key=order)),
            changed=tuple(sorted(changed, key=order)),
            regressed=tuple(sorted(regressed, key=order)),
            not_retested=tuple(sorted(not_retested, key=order)),
            unchanged=unchanged,
        )

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

    # -- accepted risks ----------------------------------------------------------------------

    def add_accepted_risk(self, check_id: str, asset: str, reason: str, expires_at: datetime) -> AcceptedRisk:
        if not check_id.strip() or not asset.strip():
            raise StoreError("an accepted risk needs a check id and an asset")
        if not reason.strip():
            raise StoreError("an accepted risk needs a reason")
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        with self._tx() as s:
            row = AcceptedRiskRow(
                check_id=_t(check_id.strip()),
                asset=_t(asset.strip()),
                reason=_t(reason.strip()),
                expires_at=expires_at,
                created_at=_now(),
            )
            s.add(row)
            s.flush()
            return _risk(row)

    def accepted_risks(self, *, active_at: datetime | None = None) -> list[AcceptedRisk]:
        with self._read() as s:
            q = select(AcceptedRiskRow).order_by(AcceptedRiskRow.id)
            if active_at is not None:
                q = q.where(AcceptedRiskRow.expires_at > active_at)
            return [_risk(r) for r in s.scalars(q)]

    def remove_accepted_risk(self, risk_id: int) -> None:
        with self._tx() as s:
            row = s.get(AcceptedRiskRow, risk_id)
            if row is None:
                raise StoreError("no such accepted risk")
            s.delete(row)


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _severity_order(change: FindingChange) -> tuple[int, str, int, str]:
    f = change.finding
    return (-f.severity.rank, f.endpoint.host, f.endpoint.port, f.check_id)


def _finding(o: OccurrenceRow) -> Finding:
    return Finding(
        check_id=o.check_id,
        title=o.title,
        severity=Severity(o.severity),
        endpoint=Endpoint(host=o.host, port=o.port, protocol=o.protocol),  # type: ignore[arg-type]
        summary=o.summary,
        evidence=dict(o.evidence),
        remediation=o.remediation,
        references=tuple(Reference.model_validate(r) for r in o.references),
        cwe=o.cwe,
        product=o.product,
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


def _risk(r: AcceptedRiskRow) -> AcceptedRisk:
    return AcceptedRisk(
        id=r.id,
        check_id=r.check_id,
        asset=r.asset,
        reason=r.reason,
        expires_at=r.expires_at,
        created_at=r.created_at,
    )


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database file owner-only: it lists where patient data leaks."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers (the dashboard) never block the scan's writer; every commit is durable
    # against a killed process (synchronous=NORMAL only risks the last commits on power loss).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


__all__ = [
    "ENV_DB",
    "Store",
    "default_db_path",
    "default_db_url",
    "evidence_hash",
    "open_store",
    "scope_key",
]
