"""A finding's life while the bulk writer (:mod:`~pacsradar.store.bulk`) works out a batch.

The rules are those of the ORM path (``IngestMixin._track_finding``), on plain slots: no ORM
object per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pacsradar.models import Finding
from pacsradar.store.dbapi import Db
from pacsradar.store.plain import _t, evidence_hash

OPEN, RESOLVED = "open", "resolved"  # views.FindingStatus


class Life:
    """One finding's row while a batch is worked out (``findings`` columns, in memory)."""

    __slots__ = (
        "check_id",
        "dedupe_key",
        "dirty",
        "evidence_hash",
        "first_scan_id",
        "first_seen",
        "host",
        "id",
        "last_scan_id",
        "last_seen",
        "port",
        "protocol",
        "resolved_at",
        "resolved_scan_id",
        "severity",
        "status",
        "title",
    )

    def __init__(self, row: Sequence[Any], db: Db) -> None:
        (
            self.id,
            self.dedupe_key,
            self.check_id,
            self.host,
            self.port,
            self.protocol,
            self.title,
            self.severity,
            self.evidence_hash,
            self.status,
            first_seen,
            last_seen,
            resolved_at,
            self.first_scan_id,
            self.last_scan_id,
            self.resolved_scan_id,
        ) = row
        self.first_seen: datetime = db.read_dt(first_seen)  # type: ignore[assignment]
        self.last_seen: datetime = db.read_dt(last_seen)  # type: ignore[assignment]
        self.resolved_at = db.read_dt(resolved_at)
        self.dirty = False


LIFE_COLUMNS = (
    "id, dedupe_key, check_id, host, port, protocol, title, severity, evidence_hash, status, first_seen,"
    " last_seen, resolved_at, first_scan_id, last_scan_id, resolved_scan_id"
)


def new_life(f: Finding, key: str, scan_id: str, at: datetime) -> Life:
    life = Life.__new__(Life)
    life.id = None
    life.dedupe_key, life.check_id, life.host = key, _t(f.check_id), _t(f.endpoint.host)
    life.port, life.protocol, life.title = f.endpoint.port, f.endpoint.protocol, _t(f.title)
    life.severity, life.evidence_hash, life.status = f.severity.value, evidence_hash(f.evidence), OPEN
    life.first_seen = life.last_seen = at
    life.resolved_at = life.resolved_scan_id = None
    life.first_scan_id = life.last_scan_id = scan_id
    life.dirty = False
    return life


def track(life: Life, f: Finding, scan_id: str, at: datetime) -> str | None:
    """A known finding seen again at ``at``: its new state, and the event it makes (if any).
    The same rules as ``IngestMixin._track_finding``."""
    if at < life.last_seen:
        # An older scan stored late: it may move first_seen back, never the current state.
        if at < life.first_seen:
            life.first_seen, life.first_scan_id, life.dirty = at, scan_id, True
        return None
    ev = evidence_hash(f.evidence)
    kind: str | None = None
    if life.status == RESOLVED:
        kind = "regressed"
    elif life.last_scan_id != scan_id and (life.severity != f.severity.value or life.evidence_hash != ev):
        kind = "changed"
    life.status, life.resolved_at, life.resolved_scan_id = OPEN, None, None
    life.title, life.severity, life.evidence_hash = _t(f.title), f.severity.value, ev
    life.last_seen, life.last_scan_id, life.dirty = at, scan_id, True
    return kind


__all__ = ["LIFE_COLUMNS", "OPEN", "RESOLVED", "Life", "new_life", "track"]
