"""A real :class:`pacsradar.engine.Engine` run with a deterministic in-memory auditor.

Used by the resume test, in-process and as a child process that is SIGKILLed: the auditor
never touches the network and, from endpoint ``hang_from`` on, waits forever, so the kill
always lands after exactly ``hang_from`` stored endpoints (no timing involved).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from pacsradar.config import Limits, ScanOptions
from pacsradar.engine import AuditContext, Engine
from pacsradar.models import Endpoint, ScanReport, Severity, TargetResult
from pacsradar.store import Store, StoreObserver

SCOPE = ("127.0.0.1-3",)
PORTS = (104, 4242, 8042, 11112)
ENDPOINTS: tuple[Endpoint, ...] = tuple(
    Endpoint(host=f"127.0.0.{1 + i // len(PORTS)}", port=PORTS[i % len(PORTS)], protocol="dicom")
    for i in range(12)
)


def is_open(idx: int) -> bool:
    return idx % 3 != 2


class FakeAuditor:
    name = "fake"

    def __init__(self, hang_from: int | None = None) -> None:
        self.hang_from = hang_from

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        return True

    async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult:
        idx = ENDPOINTS.index(endpoint)
        if self.hang_from is not None and idx >= self.hang_from:
            await asyncio.Event().wait()
        if not is_open(idx):
            return TargetResult(endpoint=endpoint, reachable=False, error="connect failed (refused)")
        # Local import keeps this module importable in the child without the test's sys.path.
        from pacsradar_samples import finding, phi_evidence

        findings = [finding("DICOM-ASSOC-ANON", endpoint.host, endpoint.port)]
        if idx % 2 == 0:
            findings.append(
                finding(
                    "DICOM-QUERY-PHI",
                    endpoint.host,
                    endpoint.port,
                    severity=Severity.CRITICAL,
                    evidence=phi_evidence(idx + 1, 2 * idx + 1, 10 * idx + 1),
                )
            )
        return TargetResult(
            endpoint=endpoint, reachable=True, service="dicom", product="Orthanc", findings=tuple(findings)
        )


def run(url: str, scan_id: str, endpoints: Sequence[Endpoint], hang_from: int | None = None) -> ScanReport:
    with Store(url) as store:
        engine = Engine(
            ScanOptions(limits=Limits(concurrency=1)),
            [FakeAuditor(hang_from)],
            [StoreObserver(store, scope=SCOPE)],
            scan_id=scan_id,
        )
        return asyncio.run(engine.run(list(endpoints), total=len(endpoints), scope=SCOPE))


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], ENDPOINTS, int(sys.argv[3]))
