"""A sweep's dead endpoints: no model each, the same records, every observer served.

Real sockets on loopback (an accepting listener, refused ports, a full accept queue for a
dropped SYN); the auditor behind the gate is a stand-in, so only the engine is under test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from lab.ports import dropping_port, listening_port
from pacsradar.config import Limits, ScanOptions
from pacsradar.engine import AuditContext, Engine
from pacsradar.models import Endpoint, ScanReport, TargetResult, UnreachableGroup


class _Touch:
    """Behind the TCP gate, like the real auditors; answers at once for an open port."""

    name = "touch"
    gate = True

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        return not prior

    async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult:
        return TargetResult(endpoint=endpoint, reachable=True, service="touch")


class _PerResult:
    """An observer with no bulk hook: it gets one record per endpoint."""

    def __init__(self) -> None:
        self.results: list[TargetResult] = []

    def on_start(self, scan_id: str, total: int | None) -> None:
        return None

    def on_result(self, result: TargetResult) -> None:
        self.results.append(result)

    def on_finish(self, report: ScanReport) -> None:
        return None


class _Bulk(_PerResult):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.groups: list[UnreachableGroup] = []
        self.fail = fail

    def on_unreachable(self, group: UnreachableGroup) -> None:
        if self.fail:
            raise KeyError("a bug in an observer")
        self.groups.append(group)


@pytest.fixture
def lab() -> Iterator[tuple[tuple[str, int], tuple[str, int]]]:
    """(an accepting listener, a port whose accept queue is full: its SYNs are dropped)."""
    with listening_port("127.0.0.91") as open_port, dropping_port("127.0.0.92") as dropped:
        yield open_port, dropped


def _engine(observers: Sequence[object]) -> Engine:
    options = ScanOptions(limits=Limits(connect_timeout=0.4, rate=0))
    return Engine(options, [_Touch()], observers, keep_closed=True)  # type: ignore[list-item]


def _key(r: TargetResult) -> tuple[object, ...]:
    ep = r.endpoint
    attempts = tuple((a.check, a.status.value, a.reason) for a in r.attempts)
    return (ep.host, ep.port, ep.protocol, r.reachable, r.error or "", attempts)


async def test_address_pairs_give_the_records_endpoint_objects_give(
    lab: tuple[tuple[str, int], tuple[str, int]],
) -> None:
    # Given one open, one dropped and 30 refused endpoints
    listener, dropped = lab
    pairs = [listener, dropped, *((f"127.0.93.{i}", 9) for i in range(1, 31))]
    per_result, bulk = _PerResult(), _Bulk()
    # When the engine sweeps them as plain (address, port) pairs
    report = await _engine([per_result, bulk]).run(pairs, total=len(pairs))
    # And again as Endpoint records (the path names and tests take)
    classic = await _engine([]).run([Endpoint(host=h, port=p) for h, p in pairs], total=len(pairs))
    # Then both give nmap's states and the same records (kept with keep_closed)
    stats = report.stats
    assert (stats.endpoints_open, stats.endpoints_closed, stats.endpoints_filtered) == (1, 30, 1)
    assert sorted(map(_key, report.results)) == sorted(map(_key, classic.results))
    # And an observer without a bulk hook got one record per endpoint, the same ones
    assert sorted(map(_key, per_result.results)) == sorted(map(_key, classic.results))
    # And the bulk observer got the open one alone and the dead ones as groups, by error
    assert [r.endpoint.host for r in bulk.results] == ["127.0.0.91"]
    assert sum(len(g) for g in bulk.groups) == 31
    timed_out = [g for g in bulk.groups if g.timed_out]
    assert [(g.hosts, g.clean) for g in timed_out] == [(("127.0.0.92",), False)]


async def test_an_observer_failing_on_a_group_is_dropped_and_the_scan_goes_on() -> None:
    # Given an observer whose bulk hook raises, beside a healthy one
    broken, healthy = _Bulk(fail=True), _Bulk()
    engine = _engine([broken, healthy])
    pairs = [(f"127.0.94.{i}", 9) for i in range(1, 11)]
    # When the refused endpoints reach them
    report = await engine.run(pairs, total=len(pairs))
    # Then the scan finished, the broken observer is named once, the other got everything
    assert report.stats.endpoints_closed == 10
    assert engine.failed_observers == ["_Bulk.on_unreachable (KeyError)"]
    assert sum(len(g) for g in healthy.groups) == 10
