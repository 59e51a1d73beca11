"""What the store shares with its SQLAlchemy-free fast path: constants, text and row helpers.

Nothing here imports SQLAlchemy, so :mod:`pacsradar.store.lite` (a scan's writer while nothing
answers) and :mod:`pacsradar.store.observer` load without it (start-up, issue 11).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
from collections.abc import Container, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pacsradar.models import AttemptStatus, Evidence, Finding, ScanReport, TargetResult

if TYPE_CHECKING:
    from pacsradar.store.views import AcceptedRisk

ENV_DB = "PACSRADAR_DB"
#: The newest Alembic revision under ``migrations/versions`` (tests/store/test_store_migrations.py
#: checks that it is Alembic's head). A store already at it is opened without importing Alembic.
SCHEMA_REVISION = "0002"

#: An unreachable endpoint as the store writes it: host, port, protocol, error, started_at,
#: duration_ms, clean (see :meth:`pacsradar.store.ingest.IngestMixin.record_unreachable_rows`).
UnreachableRow = tuple[str, int, str, str | None, datetime, float, bool]


#: A group of dead endpoints as ``dead_groups`` stores it: protocol, error, started_at,
#: duration_ms, clean, count, hosts (4 bytes each), ports (2 bytes each, network order).
DeadGroup = tuple[str, str | None, datetime, float, bool, int, bytes, bytes]
DEAD_COLUMNS = ("protocol", "error", "started_at", "duration_ms", "clean", "count", "hosts", "ports")
#: Fewer endpoints than this sharing a group's fields stay rows: a blob is not worth it.
GROUP_MIN = 8


def pack_dead(rows: Sequence[UnreachableRow]) -> tuple[list[DeadGroup], list[UnreachableRow]]:
    """Split unreachable rows into groups of columns (IPv4 literals sharing protocol, error,
    start, duration and cleanliness) and the rows that stay rows (names, IPv6, small groups).
    No object per endpoint beyond the lists it is handed: the packing runs in C loops."""
    by: dict[tuple[str, str | None, datetime, float, bool], tuple[list[str], list[int]]] = {}
    for h, p, proto, err, at, ms, clean in rows:
        col = by.get((proto, err, at, ms, clean))
        if col is None:
            col = by[(proto, err, at, ms, clean)] = ([], [])
        col[0].append(h)
        col[1].append(p)
    groups: list[DeadGroup] = []
    rest: list[UnreachableRow] = []
    for (proto, err, at, ms, clean), (hosts, ports) in by.items():
        packed = _pack_hosts(hosts) if len(hosts) >= GROUP_MIN else None
        if packed is None and len(hosts) >= GROUP_MIN:  # some are not IPv4 literals: sort out
            v4 = [_is_v4(h) for h in hosts]
            rest.extend(
                (h, p, proto, err, at, ms, clean) for h, p, ok in zip(hosts, ports, v4, strict=True) if not ok
            )
            hosts = [h for h, ok in zip(hosts, v4, strict=True) if ok]
            ports = [p for p, ok in zip(ports, v4, strict=True) if ok]
            packed = _pack_hosts(hosts) if len(hosts) >= GROUP_MIN else None
        if packed is None:
            rest.extend((h, p, proto, err, at, ms, clean) for h, p in zip(hosts, ports, strict=True))
            continue
        n = len(hosts)
        groups.append((proto, _to(err), at, ms, clean, n, packed, struct.pack(f"!{n}H", *ports)))
    return groups, rest


def _is_v4(host: str) -> bool:
    try:
        return socket.inet_ntoa(socket.inet_aton(host)) == host
    except OSError:
        return False


def _pack_hosts(hosts: list[str]) -> bytes | None:
    """The hosts as 4-byte addresses, or None unless every one is a canonical IPv4 literal
    (``inet_aton`` also takes "127.1": only what reads back the same is packed)."""
    try:
        packed = b"".join(map(socket.inet_aton, hosts))
    except OSError:
        return None
    return packed if unpack_hosts(packed) == hosts else None


def unpack_hosts(packed: bytes) -> list[str]:
    ntoa = socket.inet_ntoa
    return [ntoa(packed[i : i + 4]) for i in range(0, len(packed), 4)]


def unpack_ports(packed: bytes) -> tuple[int, ...]:
    return struct.unpack(f"!{len(packed) // 2}H", packed)


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


def evidence_hash(evidence: Evidence) -> str:
    """sha256 of the canonical evidence JSON: a finding "changed" when it (or severity) differs."""
    canon = json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


#: Occurrence evidence key under which an exposure finding's keyed hashes are kept (never
#: values): the scan's distinct headline is recomputed from them (report/exposure.py).
HOLDINGS_KEY = "_holdings"


def with_holdings(f: Finding) -> dict[str, Any]:
    """A finding's evidence as its occurrence row stores it (with :data:`HOLDINGS_KEY`)."""
    evidence: dict[str, Any] = dict(f.evidence)
    if f.holdings is not None:
        evidence[HOLDINGS_KEY] = f.holdings.model_dump(mode="json")
    return evidence


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
    :class:`~pacsradar.store.lite.LiteStore` (SQLite, no SQLAlchemy unless needed)."""

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

    def record_results(
        self, scan_id: str, results: Sequence[TargetResult], *, fresh: bool = False
    ) -> None: ...

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
