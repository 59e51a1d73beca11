"""The SQLAlchemy-free scan writer (store/lite.py): the same rows as the full store, and the
full store as soon as something answers. SQLite only: it is the only backend it serves."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pacsradar_samples as S

from pacsradar.models import UnreachableGroup
from pacsradar.store import Store, StoreObserver
from pacsradar.store.lite import LiteStore, open_scan_writer
from pacsradar.store.plain import ScanWriter

REFUSED = "connect failed (Connection refused)"
SILENT = "connect did not complete within 3s"


def _current_db(tmp_path: Path, name: str) -> str:
    """A store at the current revision, holding the lab report (open findings on 127.0.0.1)."""
    url = f"sqlite:///{tmp_path / name}"
    with Store(url) as store:
        store.save_report(S.lab_report("before"))
    return url


def _sweep(writer: ScanWriter, scan_id: str) -> None:
    """A sweep in which nothing answers, on hosts without open findings: 300 refused, 20 silent."""
    observer = StoreObserver(writer, scope=("127.0.1.0/24", "127.0.2.0/24"), batch=64, unique_endpoints=True)
    observer.on_start(scan_id, total=320)
    at = S.T0.replace(day=9)
    observer.on_unreachable(
        UnreachableGroup(REFUSED, False, tuple(f"127.0.1.{i}" for i in range(1, 151)), (104,) * 150, at)
    )
    observer.on_unreachable(
        UnreachableGroup(REFUSED, False, tuple(f"127.0.2.{i}" for i in range(1, 151)), (104,) * 150, at)
    )
    observer.on_unreachable(
        UnreachableGroup(SILENT, True, tuple(f"127.0.1.{i}" for i in range(200, 220)), (104,) * 20, at)
    )
    report = S.report(scan_id, [], started=at)
    observer.on_finish(
        report.model_copy(
            update={"stats": report.stats.model_copy(update={"endpoints_total": 320, "endpoints_done": 320})}
        )
    )


def _rows(url: str, scan_id: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        scan = conn.execute(
            "SELECT tool, version, scope, scope_key, options, stats, total, status,"
            " finished_at IS NOT NULL FROM scans WHERE id = ?",
            (scan_id,),
        ).fetchall()
        results = conn.execute(
            "SELECT host, port, protocol, service_id, reachable, service, product, error, started_at,"
            " duration_ms, clean FROM scan_results WHERE scan_id = ? ORDER BY host, port",
            (scan_id,),
        ).fetchall()
    return scan, results


def test_a_sweep_where_nothing_answers_writes_the_rows_the_full_store_writes(tmp_path: Path) -> None:
    # Given two copies of one current store
    url_a = _current_db(tmp_path, "a.db")
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    url_b = f"sqlite:///{tmp_path / 'b.db'}"
    # When the same sweep goes through the light writer and through the full store
    lite = open_scan_writer(url_a)
    assert isinstance(lite, LiteStore)
    with lite:
        _sweep(lite, "sweep")
        # Then the light writer never needed the full store
        assert not lite.upgraded
    with Store(url_b) as full:
        _sweep(full, "sweep")
    # And the rows are the same, field for field (timestamps included: the same format)
    assert _rows(url_a, "sweep") == _rows(url_b, "sweep")
    # And the full store reads the light writer's scan as its own
    with Store(url_a) as a, Store(url_b) as b:
        assert a.get_scan("sweep").stats == b.get_scan("sweep").stats
        assert a.get_scan("sweep").stats.endpoints_filtered == 20
        assert sorted(h for h, _ in a.resume("sweep")) == sorted(h for h, _ in b.resume("sweep"))
        # And the earlier findings stay open: these hosts never had them
        assert a.hosts_with_open_findings() == b.hosts_with_open_findings() == {"127.0.0.1", "127.0.0.2"}


def test_the_full_store_takes_over_when_a_finding_could_be_resolved(tmp_path: Path) -> None:
    # Given a current store with open findings on 127.0.0.1:4242
    url = _current_db(tmp_path, "r.db")
    with open_scan_writer(url) as writer:
        assert isinstance(writer, LiteStore)
        observer = StoreObserver(writer, scope=("127.0.0.0/30",), unique_endpoints=True)
        observer.on_start("closed", total=1)
        # When that port is now refused
        group = UnreachableGroup(REFUSED, False, ("127.0.0.1",), (4242,), S.T0 + timedelta(days=3))
        observer.on_unreachable(group)
        observer.on_finish(S.report("closed", [], started=S.T0 + timedelta(days=3)))
        # Then the full store did the write, and resolved the findings as it always does
        assert writer.upgraded
    with Store(url) as store:
        diff = store.diff("before", "closed")
        assert {c.finding.check_id for c in diff.resolved} == {S.DICOM_PHI, S.DICOM_ANON, S.TLS}


def test_an_endpoint_that_answers_and_an_accepted_risk_go_to_the_full_store(tmp_path: Path) -> None:
    # Given a current store with one accepted risk in force
    url = _current_db(tmp_path, "o.db")
    with Store(url) as store:
        store.add_accepted_risk(S.TLS, "127.0.0.9", "tracked in a ticket", S.T0 + timedelta(days=3650))
    with open_scan_writer(url) as writer:
        assert isinstance(writer, LiteStore)
        # When a scan records an open endpoint with a finding, and reads the accepted risks
        writer.begin_scan("open", scope=("127.0.0.9",), total=1)
        record = S.result("127.0.0.9", 104, [S.finding(S.TLS, "127.0.0.9", 104)])
        writer.record_result("open", record)
        writer.finish_scan(S.report("open", [record]))
        risks = writer.accepted_risks(active_at=S.T0)
        # Then the full store wrote and read them
        assert writer.upgraded
        assert [r.check_id for r in risks] == [S.TLS]
    with Store(url) as store:
        assert [f.check_id for f in store.load_report("open").findings] == [S.TLS]


def test_a_new_or_foreign_database_opens_the_full_store(tmp_path: Path) -> None:
    # Given no database yet, and a file that is not a pacsradar store
    missing = f"sqlite:///{tmp_path / 'new' / 'x.db'}"
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    # When a scan opens its writer / Then the full store creates and migrates as before
    for url in (missing, f"sqlite:///{foreign}"):
        writer = open_scan_writer(url)
        try:
            assert isinstance(writer, Store)
            assert writer.schema_revision() is not None
        finally:
            writer.close()


def test_a_closed_port_scan_on_a_current_store_never_imports_sqlalchemy(tmp_path: Path) -> None:
    # Given a store made by a first scan (the CLI, as a user runs it)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    args = [sys.executable, "-X", "importtime", "-m", "pacsradar", "scan", "127.0.0.97", "-p", "9"]
    args += ["--no-default-ports", "--db", db, "--no-progress", "-f", "json"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    # When a second closed-port scan runs on it
    second = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    # Then it finished and was stored without SQLAlchemy being imported at all
    assert second.returncode == 0, second.stderr[-2000:]
    assert "sqlalchemy" not in second.stderr
    with Store(db) as store:
        assert len(store.list_scans()) == 2
