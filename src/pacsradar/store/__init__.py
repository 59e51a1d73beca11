"""The findings store: scans, assets, attempts, findings and their history, on SQLAlchemy 2.

>>> store = Store("sqlite:///findings.db")          # doctest: +SKIP
>>> engine = Engine(options, auditors, [StoreObserver(store, scope=targets)])  # doctest: +SKIP
>>> store.diff()                                     # doctest: +SKIP
"""

from __future__ import annotations

from pacsradar.store.core import (
    ENV_DB,
    Store,
    default_db_path,
    default_db_url,
    evidence_hash,
    open_store,
    scope_key,
)
from pacsradar.store.observer import StoreObserver
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

__all__ = [
    "ENV_DB",
    "AcceptedRisk",
    "AssetSummary",
    "ChangeKind",
    "FindingChange",
    "FindingEvent",
    "FindingState",
    "FindingStatus",
    "ScanDiff",
    "ScanStatus",
    "ScanSummary",
    "ServiceSummary",
    "SeverityCounts",
    "Store",
    "StoreObserver",
    "TrendPoint",
    "accepted_for",
    "default_db_path",
    "default_db_url",
    "evidence_hash",
    "open_store",
    "scope_key",
]
