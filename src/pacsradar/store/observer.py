"""The engine observer that streams a scan into the store, one endpoint per transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pacsradar.models import ScanReport, TargetResult
from pacsradar.store.core import Store

log = logging.getLogger(__name__)


class StoreObserver:
    """Implements :class:`pacsradar.engine.Observer`.

    ``on_start`` records the scan (or reopens it on ``--resume``), ``on_result`` commits each
    endpoint as soon as it is done, ``on_finish`` closes the scan. A store failure raises
    :class:`~pacsradar.errors.StoreError`: a scan that was asked to be stored does not go on
    silently unstored.
    """

    def __init__(
        self,
        store: Store,
        *,
        scope: Sequence[str] = (),
        options: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.scope = tuple(scope)
        self.options = dict(options or {})
        self.scan_id: str | None = None
        self.stored = 0

    def on_start(self, scan_id: str, total: int | None) -> None:
        self.scan_id = scan_id
        self.store.begin_scan(scan_id, scope=self.scope, options=self.options, total=total)

    def on_result(self, result: TargetResult) -> None:
        if self.scan_id is None:
            raise RuntimeError("on_result before on_start")
        self.store.record_result(self.scan_id, result)
        self.stored += 1

    def on_finish(self, report: ScanReport) -> None:
        if not report.scope and self.scope:
            report = report.model_copy(update={"scope": self.scope})
        self.store.finish_scan(report)
        log.debug("stored %d endpoints of scan %s", self.stored, report.scan_id)


__all__ = ["StoreObserver"]
