"""`pacsradar scan --workers N` and `--scheduler ADDR` from the command line, with real Dask.

The external cluster is `dask scheduler` and `dask worker` processes started here (loopback
only) and stopped in ``finally``. Traffic: 127.0.0.0/8 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.ports import wait_for_port
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies

pytestmark = pytest.mark.timeout(240)

ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
HOST = "127.15.0.21"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsradar", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def external_cluster(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler --host 127.0.0.1 --port 0` and `dask worker ... --nworkers 2 --nthreads 1`.

    Port 0: the scheduler binds a port of the kernel's choosing and writes its address to
    ``--scheduler-file``; the test waits for that file (an event), never guesses a port."""
    info = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                 "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
                env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        address = _scheduler_address(info, procs[0])
        port = int(address.rsplit(":", 1)[1])
        wait_for_port(port, proc=procs[0], what="dask scheduler")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                 "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        yield address
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _scheduler_address(info: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The address the scheduler wrote to its scheduler file, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return str(json.loads(info.read_text())["address"])
        time.sleep(0.1)  # a polling interval: the outcome is the file, not the time
    raise AssertionError(f"dask scheduler wrote no address (exit status {proc.poll()})")


def _scan_args(port: int, db: Path) -> list[str]:
    return ["scan", "127.15.0.0/26", "-p", str(port), "--no-default-ports", "--only", "dicom",
            "--rate", "0", "--db", f"sqlite:///{db}", "-f", "json"]


def test_scan_with_workers_finds_the_scp_and_is_stored_like_any_scan(tmp_path: Path) -> None:
    # Given an exposed SCP inside a /26 of loopback addresses
    with ExposedPacs(make_studies(2, seed=3), host=HOST) as pacs:
        # When scanned on a LocalCluster of 2 worker processes
        result = run_cli(*_scan_args(pacs.port, tmp_path / "w.db"), "--workers", "2", cwd=tmp_path)
    # Then it is found once, with its worker, and the scan is stored and listed
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert [r["endpoint"]["host"] for r in report["results"]] == [HOST]
    assert report["results"][0]["worker"]
    assert report["stats"]["endpoints_done"] == 64
    listed = run_cli("scans", "--json", "--db", f"sqlite:///{tmp_path / 'w.db'}", cwd=tmp_path)
    assert report["scan_id"] in listed.stdout


def test_scan_on_an_external_dask_cluster(external_cluster: str, tmp_path: Path) -> None:
    # Given `dask scheduler` and two `dask worker` processes, and an exposed SCP
    with ExposedPacs(make_studies(2, seed=4), host=HOST) as pacs:
        # When pacsradar is pointed at the scheduler
        db = tmp_path / "x.db"
        result = run_cli(*_scan_args(pacs.port, db), "--scheduler", external_cluster, cwd=tmp_path)
    # Then the SCP is found, and the scan is listed by `pacsradar scans --json`
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert [r["endpoint"]["host"] for r in report["results"]] == [HOST]
    listed = json.loads(run_cli("scans", "--json", "--db", f"sqlite:///{db}", cwd=tmp_path).stdout)
    assert report["scan_id"] in json.dumps(listed)


def test_an_unreachable_scheduler_is_one_clear_error_line(
    tmp_path: Path, closed_ports: Callable[..., int]
) -> None:
    # Given a scheduler address where nothing listens
    address = f"tcp://127.0.0.1:{closed_ports()}"
    # When scanning on it
    result = run_cli("scan", "127.15.0.1", "-p", "104", "--no-default-ports", "--no-store",
                     "--scheduler", address, cwd=tmp_path)
    # Then the exit code is "scan error" and stderr is one line naming the scheduler
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert address in lines[0]
    assert "Traceback" not in result.stderr


def test_workers_and_scheduler_together_are_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("scan", "127.15.0.1", "--no-store", "--workers", "2", "--scheduler",
                     "tcp://127.0.0.1:1", cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_cancels_the_cluster_keeps_what_finished_and_exits_130(tmp_path: Path) -> None:
    # Given a slow (rate-limited) scan on a LocalCluster of 2, storing as it goes (16,384
    # endpoints at 200/s: over a minute, so Ctrl-C lands long before the last shard)
    db = tmp_path / "c.db"
    argv = [sys.executable, "-m", "pacsradar", "scan", "127.15.64.0/18", "-p", "104", "--only", "dicom",
            "--rate", "200", "--workers", "2", "--db", f"sqlite:///{db}", "-f", "json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path,
                            start_new_session=True)
    try:
        # When Ctrl-C reaches the whole process group once some endpoints are stored
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and _stored(db) > 0:
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    # Then it exits 130 without a traceback, and the report and store keep what was finished
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"Traceback" not in err
    # And the first Ctrl-C said, in one line, what it is doing
    assert err.count(b"stopping: cancelling the shards in flight") == 1, err.decode()[-2000:]
    report = json.loads(out)
    assert report["stats"]["interrupted"] is True
    assert 0 < report["stats"]["endpoints_done"] < 16384
    assert _stored(db) >= report["stats"]["endpoints_done"] - 256  # closed rows are batched


#: Endpoints stored: a row each, or as columns (dead_groups: a sweep's refused ports, issue 26).
STORED = "select (select count(*) from scan_results) + (select coalesce(sum(count), 0) from dead_groups)"


def _stored(db: Path) -> int:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            return int(conn.execute(STORED).fetchone()[0])
    except sqlite3.Error:
        return 0
