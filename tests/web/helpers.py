"""Helpers shared by the web tests: run the engine with only the web auditor (127.0.0.1)."""

from __future__ import annotations

from pacsradar.config import Limits, ScanOptions
from pacsradar.engine import Engine
from pacsradar.models import Endpoint, Finding, ScanReport, TargetResult
from pacsradar.web.auditor import WebAuditor

CANARY = "CANARYZQX"
FAST = Limits(connect_timeout=2.0, read_timeout=2.0, target_deadline=40.0)


def web_options(*ports: int, limits: Limits = FAST, **kw: object) -> ScanOptions:
    return ScanOptions(
        limits=limits,
        only=frozenset({"web"}),
        dicom_ports=(),
        web_ports=tuple(ports),
        **kw,  # type: ignore[arg-type]
    )


async def web_scan(port: int, *, host: str = "127.0.0.1", **kw: object) -> TargetResult:
    """Run the engine with only the web auditor against one endpoint; return its result."""
    options = web_options(port, **kw)
    report = await Engine(options, [WebAuditor()]).run([Endpoint(host=host, port=port)], total=1)
    return only_result(report)


def only_result(report: ScanReport) -> TargetResult:
    assert len(report.results) == 1, "the endpoint was not reachable"
    return report.results[0]


def finding(result: TargetResult, check_id: str) -> Finding:
    found = [f for f in result.findings if f.check_id == check_id]
    assert found, f"{check_id} not reported; got {sorted(ids(result))}"
    return found[0]


def ids(result: TargetResult) -> set[str]:
    return {f.check_id for f in result.findings}


def attempt(result: TargetResult, check: str) -> dict[str, object]:
    return dict(next(a for a in result.attempts if a.check == check).details)
