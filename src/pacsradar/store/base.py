"""The store's engine, sessions and the small helpers every part of it shares.

:class:`StoreBase` opens (and migrates) the database and hands out transactions; the mixins in
:mod:`~pacsradar.store.ingest`, :mod:`~pacsradar.store.queries`, :mod:`~pacsradar.store.diff`
and :mod:`~pacsradar.store.risks` add the operations, and :class:`pacsradar.store.core.Store`
joins them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite migrations rely on the retries
    fcntl = None  # type: ignore[assignment]
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from pacsradar.errors import StoreError
from pacsradar.phi import peer_text
from pacsradar.store.plain import (
    SCHEMA_REVISION,
    _prepare_sqlite_file,
    _sqlite_pragmas,
    _t,
    db_url,
    shown_db,
)
from pacsradar.store.schema import (
    ScanRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x70616373  # "pacs": one migrator at a time on a shared PostgreSQL
#: Attempts at a migration that lost a race ("database is locked", a table made meanwhile).
_MIGRATION_ATTEMPTS = 5


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
        self.url = db_url(url)
        try:
            parsed = make_url(self.url)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
            raise StoreError(
                f"--db '{peer_text(shown_db(self.url), 200)}' is neither a file path nor a database "
                "URL (sqlite:///PATH, postgresql+psycopg://USER@HOST/DB)"
            ) from exc
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

    def set_scan_option(self, scan_id: str, key: str, value: str) -> None:
        """Replace one key of a stored scan's options, in one transaction (a streamed
        import's plan grows as endpoints arrive: ``pacsradar.pipe``)."""
        with self._tx() as s:
            row = self._scan_row(s, scan_id)
            row.options = {**dict(row.options or {}), key: _t(value)}

    def _scan_row(self, s: Session, scan_id: str) -> ScanRow:
        row = s.get(ScanRow, scan_id)
        if row is None:
            raise StoreError("no such scan")
        return row
