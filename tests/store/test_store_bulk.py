"""The bulk write path (store/bulk.py, issue 26) writes the rows the one-endpoint ORM path writes.

Every scan below goes through ``Store.record_result`` one endpoint at a time into one database,
and through ``Store.record_results`` (batches, one transaction each) into another, on SQLite and
PostgreSQL; on SQLite also through the sqlite3 writer (``LiteStore``). Then every table is
compared row for row, ids included: new, changed, resolved, regressed and late findings, a
refused endpoint that resolves, an errored one that does not, and endpoints replayed in and
across batches.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pacsradar_samples as S
import pytest
from sqlalchemy import create_engine, text

from pacsradar.models import Severity, TargetResult
from pacsradar.store import Store, StoreObserver
from pacsradar.store.lite import LiteStore, open_scan_writer
from pacsradar.store.plain import ScanWriter

TABLES = (
    "scans",
    "assets",
    "services",
    "scan_results",
    "attempts",
    "findings",
    "finding_events",
    "finding_occurrences",
)
DAY = timedelta(days=1)


def _h(i: int) -> str:
    return f"127.0.0.{i}"


def _scans() -> list[tuple[str, list[TargetResult]]]:
    """(scan id, results in the order the engine reported them)."""
    t1, t2, t3, late = S.T0 + DAY, S.T0 + 2 * DAY, S.T0 + 3 * DAY, S.T0 - DAY
    phi = S.finding(S.DICOM_PHI, _h(1), 104, severity=Severity.CRITICAL, evidence=S.phi_evidence(3, 4, 5))
    phi_more = S.finding(
        S.DICOM_PHI, _h(1), 104, severity=Severity.CRITICAL, evidence=S.phi_evidence(9, 9, 9)
    )
    anon = [S.finding(S.DICOM_ANON, _h(i), 104) for i in range(1, 9)]
    tls = [S.finding(S.TLS, _h(i), 104) for i in range(1, 9)]
    web = S.finding(S.WEB_PHI, _h(6), 8042, protocol="http")
    first = [
        S.result(_h(1), 104, [phi, anon[0]]),
        S.result(_h(2), 104, [tls[1]]),
        S.result(_h(3), 104, [anon[2], tls[2]]),
        S.result(_h(4), 104, []),
        S.result(_h(5), 104, [], reachable=False),
        S.result(_h(6), 8042, [web], protocol="http", product=None),
        S.result(_h(6), 104, [anon[5]]),
    ]
    second = [
        S.result(_h(1), 104, [phi_more], started=t1),  # PHI changed, ANON resolved
        S.result(_h(2), 104, [], errored=True, started=t1),  # not re-tested: TLS stays open
        S.result(_h(3), 104, [], reachable=False, started=t1),  # refused: both resolved
        S.result(_h(4), 104, [tls[3]], started=t1),
        S.result(_h(4), 104, [anon[3]], started=t1),  # replayed within the batch: this one wins
        S.result(_h(7), 11112, [S.finding(S.TLS, _h(7), 11112)], started=t1, product="Orthanc 1.12"),
    ]
    third = [
        S.result(_h(1), 104, [phi_more, anon[0]], started=t2),  # ANON regressed
        S.result(_h(3), 104, [anon[2]], started=t2, product=None),  # regressed; product kept
        S.result(_h(6), 104, [anon[5], anon[5]], started=t2),  # one finding reported twice
    ]
    old = [S.result(_h(1), 104, [phi], started=late), S.result(_h(8), 104, [tls[7]], started=late)]
    replay = [S.result(_h(4), 104, [], started=t3), S.result(_h(1), 104, [phi_more], started=t3)]
    return [("s1", first), ("s2", second), ("s3", third), ("late", old), ("s2", replay)]


def _run(writer: ScanWriter, record: Callable[[ScanWriter, str, Sequence[TargetResult]], None]) -> None:
    for scan_id, results in _scans():
        at = results[0].started_at
        writer.begin_scan(scan_id, scope=("127.0.0.0/28",), options={"only": ["dicom"]}, total=len(results))
        record(writer, scan_id, results)
        writer.finish_scan(S.report(scan_id, results, started=at, scope=("127.0.0.0/28",)))


def _one_by_one(writer: ScanWriter, scan_id: str, results: Sequence[TargetResult]) -> None:
    for r in results:
        writer.record_result(scan_id, r)


def _batches_of(size: int) -> Callable[[ScanWriter, str, Sequence[TargetResult]], None]:
    def record(writer: ScanWriter, scan_id: str, results: Sequence[TargetResult]) -> None:
        for i in range(0, len(results), size):
            writer.record_results(scan_id, results[i : i + size])

    return record


def _dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))]  # noqa: S608
                for t in TABLES
            }
    finally:
        engine.dispose()


def _second_url(store_url: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / name}"
    return str(request.getfixturevalue("pg_cluster").create_database())


@pytest.mark.parametrize("size", [1, 3, 256])
def test_batches_write_the_rows_of_one_endpoint_at_a_time(
    store_url: str, tmp_path: Path, request: pytest.FixtureRequest, size: int
) -> None:
    # Given two empty stores on the same backend
    bulk_url = _second_url(store_url, tmp_path, request, "bulk.db")
    # When the same scans are written one endpoint at a time (ORM) and in batches of `size`
    with Store(store_url) as reference:
        _run(reference, _one_by_one)
    with Store(bulk_url) as bulk:
        _run(bulk, _batches_of(size))
    # Then every table holds the same rows, ids and timestamps included
    want, got = _dump(store_url), _dump(bulk_url)
    for table in TABLES:
        assert got[table] == want[table], table
    # And the finding lives came out as the scenario says (the comparison is not vacuous)
    kinds = {row[3] for row in got["finding_events"]}  # id, finding_id, scan_id, kind, ...
    assert kinds == {"new", "changed", "resolved", "regressed"}


def test_the_sqlite3_writer_writes_the_rows_of_the_full_store(tmp_path: Path) -> None:
    # Given two copies of one current SQLite store
    url_a = f"sqlite:///{tmp_path / 'a.db'}"
    Store(url_a).close()
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    url_b = f"sqlite:///{tmp_path / 'b.db'}"
    # When the scans go through the sqlite3 writer, and through the full store one at a time
    lite = open_scan_writer(url_a)
    assert isinstance(lite, LiteStore)
    with lite:
        _run(lite, _batches_of(4))
        # Then the sqlite3 writer never needed SQLAlchemy's store
        assert not lite.upgraded
    with Store(url_b) as full:
        _run(full, _one_by_one)
    # And the rows are the same, field for field
    want, got = _dump(url_b), _dump(url_a)
    for table in TABLES:
        assert got[table] == want[table], table


async def test_the_observer_stores_a_finished_endpoint_without_waiting_for_the_next(tmp_path: Path) -> None:
    # Given an observer that batches results, in a running event loop
    url = f"sqlite:///{tmp_path / 'o.db'}"
    with Store(url) as store:
        observer = StoreObserver(store, scope=("127.0.0.1",), live_delay=0.01)
        observer.on_start("live", total=2)
        # When one endpoint is reported and nothing follows
        observer.on_result(S.result(_h(1), 104, [S.finding(S.TLS, _h(1), 104)]))
        assert not store.resume("live")  # buffered
        # Then the loop timer writes it (bounded wait on the store, not a timed assertion)
        import asyncio

        for _ in range(2000):
            if store.resume("live"):
                break
            await asyncio.sleep(0.005)
        assert set(store.resume("live")) == {(_h(1), 104)}
        observer.on_finish(S.report("live", []))
