"""The findings store: every scan, every endpoint, every finding's life, on any SQLAlchemy URL.

Writes happen per endpoint, in their own transaction, as the engine reports them
(:class:`~pacsradar.store.observer.StoreObserver`), so a scan killed with SIGKILL keeps every
endpoint it had finished, and :meth:`Store.resume` tells the scanner which ones to skip.

Only what the models hold is stored (HACKING.md rule 1): the store adds our own bookkeeping
(ids, timestamps, statuses, hashes of evidence) and nothing else.
"""

from __future__ import annotations

from pacsradar.store.base import MIGRATIONS
from pacsradar.store.diff import DiffMixin
from pacsradar.store.ingest import IngestMixin
from pacsradar.store.plain import ENV_DB, default_db_path, default_db_url, evidence_hash, scope_key


class Store(IngestMixin, DiffMixin):
    """The findings store. ``Store()`` opens the default SQLite file and migrates it to head.

    Its operations live by concern: writes in :mod:`~pacsradar.store.ingest`, reads in
    :mod:`~pacsradar.store.queries`, the scan diff in :mod:`~pacsradar.store.diff`, accepted
    risks in :mod:`~pacsradar.store.risks`; engine and sessions in :mod:`~pacsradar.store.base`.
    """


def open_store(url: str | None = None) -> Store:
    """Open (and migrate) the store at ``url``, ``$PACSRADAR_DB`` or the default SQLite file."""
    return Store(url or None)


__all__ = [
    "ENV_DB",
    "MIGRATIONS",
    "Store",
    "default_db_path",
    "default_db_url",
    "evidence_hash",
    "open_store",
    "scope_key",
]
