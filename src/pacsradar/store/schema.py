"""SQLAlchemy 2 tables of the findings store.

The store keeps exactly what the models in :mod:`pacsradar.models` hold, nothing more: counts,
keywords, keyed hashes and our own words. Every table is created by the Alembic migrations in
``pacsradar/store/migrations``; a test checks that these classes and the migrations agree.

Layout:

* ``scans``           one row per scan (scope, options, stats, status).
* ``assets``          one row per host ever seen reachable; ``services`` one per host:port/proto.
* ``scan_results``    one row per endpoint audited in a scan, reachable or not. It is written as
                      soon as the engine reports the endpoint, so it is also the resume log.
* ``attempts``        the check envelopes of one scan result.
* ``finding_occurrences`` the full :class:`~pacsradar.models.Finding` as seen in one scan.
* ``findings``        one row per dedupe key: the finding's life (first/last seen, resolved).
* ``finding_events``  its history: new, changed, resolved, regressed, per scan.
* ``accepted_risks``  check id + asset + reason + expiry: mutes alerts until it expires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class ScanRow(Base):
    __tablename__ = "scans"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tool: Mapped[str] = mapped_column(String(64), default="pacsradar")
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    scope: Mapped[list[str]] = mapped_column(JSON)
    scope_key: Mapped[str] = mapped_column(String(64), index=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    total: Mapped[int | None] = mapped_column(Integer)
    #: running (results streaming in), finished, interrupted.
    status: Mapped[str] = mapped_column(String(16))

    results: Mapped[list[ScanResultRow]] = relationship(
        back_populates="scan", cascade="all, delete-orphan", passive_deletes=True
    )


class AssetRow(Base):
    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(512), unique=True)
    first_seen: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()

    services: Mapped[list[ServiceRow]] = relationship(back_populates="asset")


class ServiceRow(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("asset_id", "port", "protocol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(Text)
    product: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()

    asset: Mapped[AssetRow] = relationship(back_populates="services")


class ScanResultRow(Base):
    __tablename__ = "scan_results"
    __table_args__ = (UniqueConstraint("scan_id", "host", "port", "protocol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(512))
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(16))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"), index=True)
    reachable: Mapped[bool] = mapped_column(Boolean)
    service: Mapped[str | None] = mapped_column(Text)
    product: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column()
    duration_ms: Mapped[float] = mapped_column(Float)
    #: whether every check completed: only then can a missing finding count as resolved.
    clean: Mapped[bool] = mapped_column(Boolean)

    scan: Mapped[ScanRow] = relationship(back_populates="results")
    attempts: Mapped[list[AttemptRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="AttemptRow.seq"
    )
    occurrences: Mapped[list[OccurrenceRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="OccurrenceRow.seq"
    )


class DeadGroupRow(Base):
    """Endpoints of one scan that refused or never answered, as columns (issue 26).

    A sweep's dead endpoints travel as columns (models.UnreachableGroup); a row each in
    ``scan_results`` was most of a closed port's cost. Here one row holds ``count`` of them that
    share everything but the address: ``hosts`` is their IPv4 addresses, 4 bytes each, and
    ``ports`` their ports, 2 bytes each (network order). Readers (resume, reports, the diff)
    see them as the unreachable ``scan_results`` rows they stand for.
    """

    __tablename__ = "dead_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    protocol: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column()
    duration_ms: Mapped[float] = mapped_column(Float)
    clean: Mapped[bool] = mapped_column(Boolean)
    count: Mapped[int] = mapped_column(Integer)
    hosts: Mapped[bytes] = mapped_column(LargeBinary)
    ports: Mapped[bytes] = mapped_column(LargeBinary)


class AttemptRow(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("scan_results.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    check: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class FindingRow(Base):
    """The life of one finding across scans, keyed by :attr:`Finding.dedupe_key`."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    check_id: Mapped[str] = mapped_column(String(128), index=True)
    host: Mapped[str] = mapped_column(String(512), index=True)
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    #: sha256 of the canonical evidence JSON: "changed" means severity or this differs.
    evidence_hash: Mapped[str] = mapped_column(String(64))
    #: open or resolved.
    status: Mapped[str] = mapped_column(String(16), index=True)
    first_seen: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    first_scan_id: Mapped[str] = mapped_column(String(128))
    last_scan_id: Mapped[str] = mapped_column(String(128))
    resolved_scan_id: Mapped[str | None] = mapped_column(String(128))


class OccurrenceRow(Base):
    """One finding exactly as one scan reported it."""

    __tablename__ = "finding_occurrences"
    __table_args__ = (Index("ix_finding_occurrences_scan_key", "scan_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("scan_results.id", ondelete="CASCADE"), index=True)
    scan_id: Mapped[str] = mapped_column(String(128))
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    check_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(512))
    port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    remediation: Mapped[str] = mapped_column(Text)
    references: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    cwe: Mapped[str | None] = mapped_column(String(64))
    product: Mapped[str | None] = mapped_column(Text)


class FindingEventRow(Base):
    __tablename__ = "finding_events"
    __table_args__ = (UniqueConstraint("finding_id", "scan_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), index=True)
    scan_id: Mapped[str] = mapped_column(String(128))
    #: new, changed, resolved, regressed.
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column()


class AcceptedRiskRow(Base):
    __tablename__ = "accepted_risks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(String(128))
    #: a host, a host:port label, or ``*`` for every asset.
    asset: Mapped[str] = mapped_column(String(600))
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()


metadata = Base.metadata

__all__ = [
    "AcceptedRiskRow",
    "AssetRow",
    "AttemptRow",
    "Base",
    "DeadGroupRow",
    "FindingEventRow",
    "FindingRow",
    "OccurrenceRow",
    "ScanResultRow",
    "ScanRow",
    "ServiceRow",
    "UTCDateTime",
    "metadata",
]
