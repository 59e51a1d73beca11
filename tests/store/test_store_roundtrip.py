"""The store keeps exactly the ScanReport the engine produced, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pacsradar_samples as S
import pytest

from pacsradar.errors import StoreError
from pacsradar.models import TargetResult, UnreachableGroup
from pacsradar.store import ScanStatus, Store, StoreObserver, scope_key


def test_saved_report_loads_back_identical(store: Store) -> None:
    # Given a report with hostile peer strings, keyed hashes and several endpoints
    report = S.lab_report()
    # When it is stored and loaded back
    store.save_report(report)
    loaded = store.load_report(report.scan_id)
    # Then the pydantic models are equal, field for field (timestamps stay UTC-aware)
    assert loaded == report
    assert loaded.started_at.tzinfo is not None


def test_observer_streams_each_result_in_its_own_transaction(store: Store, store_url: str) -> None:
    # Given an observer started for a scan
    report = S.lab_report("streamed")
    observer = StoreObserver(store, scope=report.scope)
    observer.on_start(report.scan_id, total=4)
    # When two endpoints are reported and the scan never finishes (a killed process)
    observer.on_result(report.results[0])
    observer.on_result(report.results[1])
    # Then another connection already sees both, and the scan reads as running
    with Store(store_url) as other:
        assert {port for _, port in other.resume("streamed")} == {4242, 8042}
        assert other.get_scan("streamed").status is ScanStatus.RUNNING
        partial = other.load_report("streamed")
        assert len(partial.findings) == 4


def test_resume_lists_finished_endpoints_including_closed_ones(store: Store) -> None:
    # Given a scan that audited one open and one closed endpoint before stopping
    report = S.lab_report("partial")
    observer = StoreObserver(store, scope=report.scope, batch=1)
    observer.on_start("partial", total=10)
    observer.on_result(report.results[0])
    observer.on_result(S.result("127.0.0.3", 104, [], reachable=False))
    # When the scanner asks what to skip
    done = store.resume("partial")
    # Then both endpoints are listed, closed ones too (they need no second connection)
    assert done == {("127.0.0.1", 4242), ("127.0.0.3", 104)}


def test_replayed_result_replaces_instead_of_duplicating(store: Store) -> None:
    # Given a stored result
    report = S.lab_report("replay")
    store.begin_scan("replay", scope=report.scope)
    store.record_result("replay", report.results[0])
    # When the same endpoint is recorded again (a resume that redid it)
    store.record_result("replay", report.results[0])
    # Then it is stored once
    assert len(store.load_report("replay").results) == 1
    assert len(store.scan_findings("replay")) == 3


def test_unknown_scan_is_a_store_error(store: Store) -> None:
    # Given an empty store / When loading or resuming an unknown scan / Then StoreError
    with pytest.raises(StoreError):
        store.load_report("nope")
    with pytest.raises(StoreError):
        store.resume("nope")
    with pytest.raises(StoreError):
        store.diff()


def test_list_scans_summarises_findings_and_exposure(store: Store) -> None:
    # Given two scans of the same scope
    store.save_report(S.lab_report("one"))
    store.save_report(S.lab_report("two", started=S.T0 + timedelta(days=1)))
    # When listing
    scans = store.list_scans()
    # Then newest first, with severity counts and the per-host exposure figure
    assert [s.scan_id for s in scans] == ["two", "one"]
    assert scans[0].findings.critical == 2
    assert scans[0].exposure.patients == 120  # max over 4242/8042 of one host, not 238
    assert scans[0].exposure.services == 2
    assert scans[0].scope_key == scope_key(["127.0.0.1/30"])
    assert [p.scan_id for p in store.trend()] == ["one", "two"]


def test_finished_scan_status_and_stats(store: Store) -> None:
    # Given a scan streamed through the observer and interrupted
    report = S.lab_report("stopped").model_copy(
        update={"stats": S.lab_report().stats.model_copy(update={"interrupted": True})}
    )
    observer = StoreObserver(store, scope=report.scope)
    observer.on_start("stopped", total=4)
    for r in report.results:
        observer.on_result(r)
    # When it finishes
    observer.on_finish(report)
    # Then the status says interrupted and the stats are counted from what was stored
    summary = store.get_scan("stopped")
    assert summary.status is ScanStatus.INTERRUPTED
    assert summary.stats.endpoints_open == 3
    assert summary.stats.endpoints_total == 4


def test_a_scan_killed_midway_lists_what_it_stored_of_its_total(store: Store) -> None:
    # Given a scan of 10 endpoints whose process died after storing 3 of them (no on_finish)
    store.begin_scan("killed", scope=("127.0.0.0/29",), options={}, total=10)
    store.record_unreachable(
        "killed", [S.result(f"127.0.0.{i}", 11112, [], reachable=False) for i in range(1, 4)]
    )
    # When the scans are listed / Then it reads 3 of 10 (what --resume will skip), not 0/0
    summary = store.get_scan("killed")
    assert summary.status is ScanStatus.RUNNING
    assert (summary.stats.endpoints_done, summary.stats.endpoints_total) == (3, 10)


def test_assets_and_services_are_tracked(store: Store) -> None:
    # Given a stored scan
    store.save_report(S.lab_report())
    # When listing assets
    assets = {a.host: a for a in store.assets()}
    # Then each reachable host has its services and open-finding counts; closed ones are absent
    assert set(assets) == {"127.0.0.1", "127.0.0.2"}
    assert [(s.port, s.protocol) for s in assets["127.0.0.1"].services] == [
        (4242, "dicom"),
        (8042, "http"),
    ]
    assert assets["127.0.0.1"].open_findings.critical == 2
    assert assets["127.0.0.1"].services[0].product == S.HOSTILE_BANNER


def test_nul_characters_never_break_the_backend(store: Store) -> None:
    # Given a finding whose summary reached the model with a NUL (PostgreSQL text rejects it)
    f = S.finding(S.TLS, "127.0.0.9", 104, summary="a\x00b")
    report = S.report("nul", [S.result("127.0.0.9", 104, [f])])
    # When stored / Then it is kept, with the NUL replaced the same way on every backend
    store.save_report(report)
    (loaded,) = store.load_report("nul").findings
    assert loaded.summary == "a\N{REPLACEMENT CHARACTER}b"


def _closed_sweep(observer: StoreObserver, scan_id: str, count: int) -> list[TargetResult]:
    """Stream ``count`` refused endpoints (port 4242, where the lab report has findings)."""
    observer.on_start(scan_id, total=count)
    closed = [
        S.result(f"127.0.{i // 250}.{i % 250}", 4242, [], reachable=False, started=S.T0.replace(day=9))
        for i in range(1, count)
    ]
    for r in closed:
        observer.on_result(r)
    observer.on_finish(S.report(scan_id, closed, started=S.T0.replace(day=9)))
    return closed


def test_closed_ports_are_batched_and_still_resolve_findings(store: Store) -> None:
    # Given an open finding on an endpoint, then a scan where that port and many others are closed
    store.save_report(S.lab_report("before"))
    observer = StoreObserver(store, scope=("127.0.0.1/30",), batch=50)
    # When the results stream in and the scan finishes
    closed = _closed_sweep(observer, "sweep", 300)
    # Then every closed endpoint is recorded once, and the gone service's findings are resolved
    assert len(store.resume("sweep")) == len(closed)
    assert store.get_scan("sweep").stats.endpoints_closed == len(closed)
    diff = store.diff("before", "sweep")
    assert {c.finding.check_id for c in diff.resolved} == {S.DICOM_PHI, S.DICOM_ANON, S.TLS}
    # And re-recording the same batch replaces rather than duplicates
    store.record_unreachable("sweep", closed[:10])
    assert len(store.resume("sweep")) == len(closed)


def test_a_unique_endpoint_sweep_skips_lookups_but_resolves_the_same_findings(store: Store) -> None:
    # Given an open finding on one endpoint, then an address-only sweep (endpoints unique by
    # construction) in which that port and many others are refused
    store.save_report(S.lab_report("before"))
    assert "127.0.0.1" in store.hosts_with_open_findings()
    observer = StoreObserver(store, scope=("127.0.0.0/22",), batch=64, unique_endpoints=True)
    # When they stream in without the per-batch lookups
    closed = _closed_sweep(observer, "fast", 600)
    # Then each endpoint is stored once, and the refused port still resolves its findings
    assert len(store.resume("fast")) == len(closed)
    diff = store.diff("before", "fast")
    assert {c.finding.check_id for c in diff.resolved} == {S.DICOM_PHI, S.DICOM_ANON, S.TLS}



def test_grouped_dead_endpoints_are_stored_as_rows_and_only_refusals_resolve(store: Store) -> None:
    # Given open findings on 127.0.0.1:4242, then a sweep whose dead endpoints arrive as groups
    # (a Dask worker's, or the local engine's, columns per error)
    store.save_report(S.lab_report("before"))
    observer = StoreObserver(store, scope=("127.0.0.0/22",), batch=64, unique_endpoints=True)
    observer.on_start("grouped", total=401)
    later = S.T0.replace(day=9)
    silent = UnreachableGroup(
        error="connect did not complete within 3s",
        timed_out=True,
        hosts=("127.0.0.1",),
        ports=(4242,),
        started_at=later,
    )
    # When the timed-out group comes first: the port could not be tested
    observer.on_unreachable(silent)
    observer.flush()
    # Then it is stored, and the findings stay open ("could not test" never reads as fixed)
    assert list(store.resume("grouped")) == [("127.0.0.1", 4242)]
    assert store.diff("before", "grouped").resolved == ()
    # When a second scan finds the port refused, among 400 others, in one group
    observer = StoreObserver(store, scope=("127.0.0.0/22",), batch=64, unique_endpoints=True)
    observer.on_start("refused", total=401)
    hosts = tuple(f"127.0.{i // 250}.{i % 250}" for i in range(1, 402))
    refused = UnreachableGroup(
        error="connect failed (Connection refused)",
        timed_out=False,
        hosts=hosts,
        ports=(4242,) * len(hosts),
        started_at=later,
    )
    observer.on_unreachable(refused)
    observer.on_finish(S.report("refused", [], started=later))
    # Then every endpoint is one row, and the gone service's findings are resolved
    assert len(store.resume("refused")) == len(hosts)
    diff = store.diff("before", "refused")
    assert {c.finding.check_id for c in diff.resolved} == {S.DICOM_PHI, S.DICOM_ANON, S.TLS}

def test_default_location_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no URL: the store lives in the user data directory (XDG on Linux)
    monkeypatch.delenv("PACSRADAR_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with Store() as store:
        assert store.url == f"sqlite:///{tmp_path / 'data' / 'pacsradar' / 'pacsradar.db'}"
    # And PACSRADAR_DB overrides it
    other = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("PACSRADAR_DB", other)
    with Store() as store:
        assert store.url == other
        assert store.display_url == other
    # And an unparseable URL is a StoreError naming it (a value without a scheme is a path)
    for bad in ("://x", "postgresql://u@127.0.0.1:port/db"):
        with pytest.raises(StoreError, match="neither a file path nor a database URL"):
            Store(bad)
