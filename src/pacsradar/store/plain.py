"""What the store shares with its SQLAlchemy-free fast path: constants, text and row helpers.

Nothing here imports SQLAlchemy, so :mod:`pacsradar.store.lite` (a scan's writer while nothing
answers) and :mod:`pacsradar.store.observer` load without it (start-up, issue 11).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Container, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pacsradar.models import AttemptStatus, ScanReport, TargetResult

if TYPE_CHECKING:
    from pacsradar.store.views import AcceptedRisk

ENV_DB = "PACSRADAR_DB"
#: The newest Alembic revision under ``migrations/versions`` (tests/store/test_store_migrations.py
#: checks that it is Alembic's head). A store already at it is opened without importing Alembic.
SCHEMA_REVISION = "0001"

#: An unreachable endpoint as the store writes it: host, port, protocol, error, started_at,
#: duration_ms, clean (see :meth:`pacsradar.store.ingest.IngestMixin.record_unreachable_rows`).
UnreachableRow = tuple[str, int, str, str | None, datetime, float, bool]


def default_db_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("pacsradar", appauthor=False)) / "pacsradar.db"


def default_db_url() -> str:
    """``$PACSRADAR_DB`` if set, else SQLite in the user data directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return db_url(env)
    return f"sqlite:///{default_db_path()}"


def db_url(value: str | None) -> str:
    """``--db`` as an SQLAlchemy URL: a value without a scheme is the path of a SQLite file.

    ``--db /tmp/x.db`` and ``--db findings.db`` then mean ``sqlite:////tmp/x.db`` and the file
    in the current directory (made absolute, so the URL printed for a later ``report`` or
    ``--resume`` names the same file from anywhere); a URL (``sqlite:///...``,
    ``postgresql+psycopg://...``) is used as it is.
    """
    if not value:
        return default_db_url()
    if "://" in value or value.startswith("sqlite:"):
        return value
    return f"sqlite:///{Path(value).expanduser().absolute()}"


def shown_db(value: str) -> str:
    """A ``--db`` value for an error message: bounded, and without a password in a URL."""
    head, at, tail = value.rpartition("@")
    if at and "://" in head:
        scheme, _, _credentials = head.partition("://")
        value = f"{scheme}://***@{tail}"
    return value[:200]


def plain_sqlite_path(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL (no driver, no query, no URI or memory
    database), or ``None`` when only SQLAlchemy can tell (then the full store is used)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    database = url[len(prefix) :]
    if not database or database == ":memory:" or database.startswith("file:") or "?" in database:
        return None
    return Path(database).expanduser()


def scope_key(scope: Iterable[str]) -> str:
    """Scans of the same scope (same targets, in any order) share this key."""
    canon = "\n".join(sorted({s.strip() for s in scope if s.strip()}))
    return hashlib.sha256(canon.encode()).hexdigest()[:32]


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


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database file owner-only: it lists where patient data leaks."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers (the dashboard) never block the scan's writer; every commit is durable
    # against a killed process (synchronous=NORMAL only risks the last commits on power loss).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class ScanWriter(Protocol):
    """What a scan needs of the store: :class:`~pacsradar.store.core.Store` has it, and so has
    :class:`~pacsradar.store.lite.LiteStore` (SQLite, no SQLAlchemy until something answers)."""

    @property
    def display_url(self) -> str: ...

    def begin_scan(
        self,
        scan_id: str,
        *,
        scope: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        total: int | None = None,
    ) -> None: ...

    def hosts_with_open_findings(self) -> frozenset[str]: ...

    def record_result(self, scan_id: str, result: TargetResult) -> None: ...

    def record_unreachable_rows(
        self,
        scan_id: str,
        rows: Sequence[UnreachableRow],
        *,
        fresh: bool = False,
        open_hosts: Container[str] | None = None,
    ) -> None: ...

    def finish_scan(self, report: ScanReport) -> None: ...

    def set_scan_option(self, scan_id: str, key: str, value: str) -> None:
        """Replace one key of a running scan's options (the plan of a streamed import)."""
        ...

    def accepted_risks(self, *, active_at: datetime | None = None) -> list[AcceptedRisk]: ...

    def close(self) -> None: ...
