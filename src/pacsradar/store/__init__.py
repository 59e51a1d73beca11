"""The findings store: scans, assets, attempts, findings and their history, on SQLAlchemy 2.

>>> store = Store("sqlite:///findings.db")          # doctest: +SKIP
>>> engine = Engine(options, auditors, [StoreObserver(store, scope=targets)])  # doctest: +SKIP
>>> store.diff()                                     # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Loaded on first use (PEP 562): a scan whose SQLite store is current writes through
# pacsradar.store.lite and never imports SQLAlchemy unless it must (issues 11, 26).
_WHERE = {
    **dict.fromkeys(("ENV_DB", "default_db_path", "default_db_url", "scope_key"), "pacsradar.store.plain"),
    **dict.fromkeys(("Store", "evidence_hash", "open_store"), "pacsradar.store.core"),
    "StoreObserver": "pacsradar.store.observer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name, "pacsradar.store.views" if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
