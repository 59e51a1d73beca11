"""Accepted risks: a finding on an asset that its owner has accepted until a date."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from pacsradar.errors import StoreError
from pacsradar.store.base import StoreBase
from pacsradar.store.plain import _now, _t
from pacsradar.store.schema import (
    AcceptedRiskRow,
)
from pacsradar.store.views import (
    AcceptedRisk,
)


class RisksMixin(StoreBase):
    """Accepted risks: add, list, remove."""

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


def _risk(r: AcceptedRiskRow) -> AcceptedRisk:
    return AcceptedRisk(
        id=r.id,
        check_id=r.check_id,
        asset=r.asset,
        reason=r.reason,
        expires_at=r.expires_at,
        created_at=r.created_at,
    )
