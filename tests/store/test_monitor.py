"""Monitoring: a lab reconfigured between two scans gives one alert per channel, with the right diff."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from receivers import smtp_receiver, webhook_receiver

from pacsradar.alerts import SIGNATURE_HEADER, Alert, EmailSink, WebhookSink, verify
from pacsradar.config import Limits, ScanOptions
from pacsradar.engine import AuditContext, Engine, Observer
from pacsradar.errors import UsageError
from pacsradar.models import Endpoint, ScanReport, Severity, TargetResult
from pacsradar.monitor import Monitor, parse_interval
from pacsradar.store import ChangeKind, Store

SECRET = b"monitor-secret"
PACS = Endpoint(host="127.0.0.1", port=11112, protocol="dicom")


class LabAuditor:
    """A lab PACS whose configuration the test changes between scans (no network)."""

    name = "lab"

    def __init__(self, lab: dict[str, bool]) -> None:
        self.lab = lab

    def wants(self, endpoint: Endpoint, prior: Sequence[TargetResult], options: ScanOptions) -> bool:
        return True

    async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult:
        from pacsradar_samples import finding

        found = []
        if self.lab["anonymous_association"]:
            found.append(finding("DICOM-ASSOC-ANON", endpoint.host, endpoint.port))
        if self.lab["wildcard_ae"]:
            found.append(
                finding("DICOM-AE-WILDCARD", endpoint.host, endpoint.port, severity=Severity.CRITICAL)
            )
        return TargetResult(endpoint=endpoint, reachable=True, service="dicom", findings=tuple(found))


def lab_scan(lab: dict[str, bool]):  # type: ignore[no-untyped-def]
    def scan(targets: Sequence[str], options: ScanOptions, observers: Sequence[Observer]) -> ScanReport:
        engine = Engine(ScanOptions(limits=Limits(concurrency=1)), [LabAuditor(lab)], observers)
        return asyncio.run(engine.run([PACS], total=1, scope=tuple(targets)))

    return scan


def test_reconfigured_lab_alerts_once_per_channel(store: Store) -> None:
    # Given a lab PACS that accepts anonymous associations, a webhook and an SMTP server
    lab = {"anonymous_association": True, "wildcard_ae": False}
    with webhook_receiver() as hook, smtp_receiver() as smtp:
        sinks = [
            WebhookSink(hook.url, SECRET, sleep=lambda _: None),
            EmailSink(smtp.host, smtp.port, sender="radar@example.test", recipients=["soc@example.test"]),
        ]
        monitor = Monitor(store, ["127.0.0.1"], sinks=sinks, scan=lab_scan(lab), alert_on_first=False)
        # When a baseline cycle runs, the lab is reconfigured, and a second cycle runs
        first = monitor.run_once()
        lab.update(anonymous_association=False, wildcard_ae=True)
        second = monitor.run_once()
    # Then the baseline sent nothing
    assert first.alert is None
    assert first.diff.base is None
    # And the second cycle found one resolved and one new finding
    assert second.diff.base == first.report.scan_id
    assert [c.finding.check_id for c in second.diff.resolved] == ["DICOM-ASSOC-ANON"]
    assert [c.finding.check_id for c in second.diff.new] == ["DICOM-AE-WILDCARD"]
    # And the webhook and the SMTP server each got exactly one alert saying so
    assert len(hook.requests) == 1
    assert verify(SECRET, hook.requests[0].body, hook.requests[0].headers[SIGNATURE_HEADER])
    alert = Alert.model_validate_json(hook.requests[0].body)
    assert {(i.kind, i.check_id) for i in alert.items} == {
        (ChangeKind.RESOLVED, "DICOM-ASSOC-ANON"),
        (ChangeKind.NEW, "DICOM-AE-WILDCARD"),
    }
    assert len(smtp.messages) == 1
    assert smtp.messages[0][2]["Subject"] == "[pacsradar] 1 new, 1 resolved on 127.0.0.1"
    assert [d.ok for d in second.deliveries] == [True, True]
    # And both cycles are stored scans of the same scope
    assert [s.scan_id for s in store.list_scans()] == [second.report.scan_id, first.report.scan_id]


def test_accepted_risk_mutes_the_monitor(store: Store) -> None:
    # Given a baseline, then a new finding that has an unexpired accepted risk
    from datetime import UTC, datetime, timedelta

    lab = {"anonymous_association": False, "wildcard_ae": False}
    with webhook_receiver() as hook:
        monitor = Monitor(
            store,
            ["127.0.0.1"],
            sinks=[WebhookSink(hook.url, SECRET)],
            scan=lab_scan(lab),
            alert_on_first=False,
        )
        monitor.run_once()
        store.add_accepted_risk(
            "DICOM-AE-WILDCARD", "127.0.0.1", "isolated lab", datetime.now(UTC) + timedelta(days=7)
        )
        lab["wildcard_ae"] = True
        # When the next cycle runs
        cycle = monitor.run_once()
    # Then the change is in the diff but nobody is alerted
    assert len(cycle.diff.new) == 1
    assert cycle.alert is None
    assert hook.requests == []


def test_run_forever_stops_after_max_cycles(store: Store) -> None:
    # Given a monitor with a tiny interval
    lab = {"anonymous_association": True, "wildcard_ae": False}
    seen: list[str] = []
    monitor = Monitor(store, ["127.0.0.1"], scan=lab_scan(lab))
    # When it runs for two cycles
    n = monitor.run_forever(
        0.01, max_cycles=2, on_cycle=lambda c: seen.append(c.report.scan_id), stop=threading.Event()
    )
    # Then two scans were stored
    assert n == 2
    assert len(set(seen)) == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6h", 21600), ("90m", 5400), ("1h30m", 5400), ("1d", 86400), ("45s", 45), ("3600", 3600)],
)
def test_parse_interval(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "6x", "h", "1h junk", "-5m"])
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_interval(text)
