"""Dead endpoints stored as columns (``dead_groups``, issue 26) read back exactly as rows do.

The same sweep goes into one store as columns (``fresh``: the endpoints are new to the scan) and
into another as one ``scan_results`` row each (not fresh: the row path); resume, the report
with its unreachable endpoints, the stats, the scan list and the diff must agree, on SQLite and
PostgreSQL, and through the sqlite3 writer too.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pacsradar_samples as S
import pytest
from sqlalchemy import create_engine, text

from pacsradar.models import UnreachableGroup
from pacsradar.store import Store, StoreObserver
from pacsradar.store.lite import LiteStore, open_scan_writer
from pacsradar.store.plain import ScanWriter, pack_dead, unpack_hosts, unpack_ports

REFUSED = "connect failed (Connection refused)"
SILENT = "connect did not complete within 3s"
AT = S.T0 + timedelta(days=2)


def _sweep(writer: ScanWriter, *, fresh: bool) -> None:
    """Before: the lab report (open findings on 127.0.0.1). Then a sweep: 127.0.0.1's PACS
    port refused (resolves its findings), 300 refused, 40 silent, 3 names and an IPv6 literal."""
    observer = StoreObserver(writer, scope=("127.0.0.0/22",), batch=100, unique_endpoints=fresh)
    observer.on_start("sweep", total=345)
    refused = tuple(f"127.0.1.{i}" for i in range(1, 201)) + tuple(f"127.0.2.{i}" for i in range(1, 101))
    observer.on_unreachable(UnreachableGroup(REFUSED, False, refused, (104,) * 300, AT))
    silent = tuple(f"127.0.3.{i}" for i in range(1, 41))
    observer.on_unreachable(UnreachableGroup(SILENT, True, silent, (11112,) * 40, AT))
    odd = ("127.0.0.1", "pacs.lab.invalid", "modality.lab.invalid", "::1", "127.1")
    observer.on_unreachable(UnreachableGroup(REFUSED, False, odd, (4242, 104, 104, 104, 104), AT))
    report = S.report("sweep", [], started=AT, scope=("127.0.0.0/22",))
    observer.on_finish(
        report.model_copy(
            update={"stats": report.stats.model_copy(update={"endpoints_total": 345, "endpoints_done": 345})}
        )
    )


def _views(url: str) -> tuple[object, ...]:
    with Store(url) as store:
        report = store.load_report("sweep", include_unreachable=True)
        return (
            sorted(store.resume("sweep")),
            report.results,
            report.stats,
            store.get_scan("sweep").stats,
            [(x.scan_id, x.stats) for x in store.list_scans()],
            store.diff("before", "sweep"),
            store.findings(),
        )


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
    finally:
        engine.dispose()


def test_columns_read_back_as_the_rows_they_stand_for(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given two stores holding the same earlier scan with open findings
    if store_url.startswith("sqlite"):
        rows_url = f"sqlite:///{tmp_path / 'rows.db'}"
    else:
        rows_url = request.getfixturevalue("pg_cluster").create_database()
    for url in (store_url, rows_url):
        with Store(url) as store:
            store.save_report(S.lab_report("before"))
    # When the same sweep is stored as columns in one and as rows in the other
    with Store(store_url) as store:
        _sweep(store, fresh=True)
    with Store(rows_url) as store:
        _sweep(store, fresh=False)
    # Then the columns did hold the sweep (a handful of rows, not one per endpoint)
    assert _count(store_url, "dead_groups") == 2
    assert _count(store_url, "scan_results") - _count(rows_url, "scan_results") == 5 - 345
    # And every reader sees the same scan: resume, report, stats, scan list, diff, findings
    got, want = _views(store_url), _views(rows_url)
    assert got == want
    diff = got[5]
    assert {c.finding.check_id for c in diff.resolved} == {S.DICOM_PHI, S.DICOM_ANON, S.TLS}  # type: ignore[attr-defined]


def test_the_sqlite3_writer_stores_the_same_columns(tmp_path: Path) -> None:
    # Given two copies of one current SQLite store with the earlier scan
    url_a = f"sqlite:///{tmp_path / 'a.db'}"
    with Store(url_a) as store:
        store.save_report(S.lab_report("before"))
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    url_b = f"sqlite:///{tmp_path / 'b.db'}"
    # When the sweep goes through the sqlite3 writer and through the full store
    lite = open_scan_writer(url_a)
    assert isinstance(lite, LiteStore)
    with lite:
        _sweep(lite, fresh=True)
    with Store(url_b) as store:
        _sweep(store, fresh=True)
    # Then both read back the same
    assert _views(url_a) == _views(url_b)


def test_only_canonical_ipv4_literals_are_packed() -> None:
    # Given rows with IPv4 literals, a short form, a name and IPv6
    hosts = [f"127.0.0.{i}" for i in range(1, 11)]
    odd = ["127.1", "pacs.lab.invalid", "::1"]
    rows = [(h, 104, "unknown", REFUSED, AT, 0.0, True) for h in [*hosts, *odd]]
    # When they are packed
    groups, rest = pack_dead(rows)
    # Then the literals became one group that unpacks to them, and the rest stayed rows
    assert len(groups) == 1 and groups[0][5] == 10
    assert unpack_hosts(groups[0][6]) == hosts and unpack_ports(groups[0][7]) == (104,) * 10
    assert [r[0] for r in rest] == odd
