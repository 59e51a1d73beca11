"""The store's engine, sessions and the small helpers every part of it shares.

:class:`StoreBase` opens (and migrates) the database and hands out transactions; the mixins in
:mod:`~pacsradar.store.ingest`, :mod:`~pacsradar.store.queries`, :mod:`~pacsradar.store.diff`
and :mod:`~pacsradar.store.risks` add the operations, and :class:`pacsradar.store.core.Store`
joins them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import platformdirs

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite migrations rely on the retries
    fcntl = None  # type: ignore[assignment]
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from pacsradar.errors import StoreError
from pacsradar.models import (
    AttemptStatus,
    Evidence,
    TargetResult,
)
from pacsradar.store.schema import (
    ScanRow,
)

ENV_DB = "PACSRADAR_DB"
MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest Alembic revision under ``migrations/versions`` (tests/store/test_store_migrations.py
#: checks that it is Alembic's head). A store already at it is opened without importing Alembic.
SCHEMA_REVISION = "0001"
_PG_MIGRATION_LOCK = 0x70616373  # "pacs": one migrator at a time on a shared PostgreSQL
#: Attempts at a migration that lost a race ("database is locked", a table made meanwhile).
_MIGRATION_ATTEMPTS = 5


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("pacsradar", appauthor=False)) / "pacsradar.db"


def default_db_url() -> str:
    """``$PACSRADAR_DB`` if set, else SQLite in the user data directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return env
    return f"sqlite:///{default_db_path()}"


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


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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


def _transactional_ddl_engine(url: str) -> Engine:
    """A SQLite engine whose transactions really cover DDL, for migrations.

    Python's sqlite3 driver commits before every CREATE/ALTER on its own, so a migration killed
    part-way would leave tables without Alembic's version row: a store no later run could open.
    With the driver's implicit transactions off and an explicit ``BEGIN IMMEDIATE`` (SQLAlchemy's
    documented pysqlite recipe), the whole upgrade, version row included, commits at once or not
    at all, and a second migrator waits for the write lock instead of racing.
    """
    engine = create_engine(url, connect_args={"timeout": 30})

    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        _sqlite_pragmas(dbapi_connection, record)

    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", _connect)
    event.listen(engine, "begin", _begin)
    return engine


class StoreBase:
    """Engine, sessions and migrations. Use :class:`pacsradar.store.core.Store`."""

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

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at; ``None`` for a new (or foreign) database."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except SQLAlchemyError:
            return None  # no version table yet (its own connection: PostgreSQL aborts the tx)
        return str(row[0]) if row is not None else None

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent, safe under concurrency).

        Opening a store that is already current costs one query and no Alembic import. Several
        scans opening a new database at once take turns: an advisory lock on PostgreSQL, a lock
        file beside a SQLite database; the later ones find it current. A migration that still
        loses a race (SQLite "database is locked") is retried.
        """
        if self.schema_revision() == SCHEMA_REVISION:
            return
        for attempt in range(_MIGRATION_ATTEMPTS):
            try:
                with self._migration_lock():
                    if self.schema_revision() == SCHEMA_REVISION:
                        return
                    self._upgrade()
                return
            except SQLAlchemyError as exc:
                if attempt + 1 == _MIGRATION_ATTEMPTS:
                    raise StoreError(f"could not migrate the store ({type(exc).__name__})") from exc
                time.sleep(0.1 * 2**attempt)

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Cross-process lock for SQLite migrations: ``flock`` on ``<db>.migrate.lock``."""
        database = make_url(self.url).database if self.backend == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:") or fcntl is None:
            yield  # PostgreSQL: the advisory lock in _upgrade; memory: one process
            return
        lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate.lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        engine = _transactional_ddl_engine(self.url) if self.backend == "sqlite" else self.engine
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            if engine is not self.engine:
                engine.dispose()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
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

    def _scan_row(self, s: Session, scan_id: str) -> ScanRow:
        row = s.get(ScanRow, scan_id)
        if row is None:
            raise StoreError("no such scan")
        return row
