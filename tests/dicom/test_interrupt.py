"""Ctrl-C stops at once (issue 11, point 4), against peers that never answer.

The scan runs as a subprocess (a real SIGINT, the real signal handler); peers live on
127.0.0.0/8. The assertions are on completion: the scan must end long before the
association timeout (30 s) it would otherwise wait out, so the bound is that timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.hostile import Silent, run_in_thread
from lab.ports import one_port
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies

ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
ASSOC_TIMEOUT = 30.0


def _wait_for(predicate: object, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("the scan never reached the silent peers")


def _stored_hosts(db: Path) -> set[str]:
    """Hosts with a finished record in the scan's SQLite store (read-only; empty until then)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            return {str(row[0]) for row in conn.execute("SELECT DISTINCT host FROM scan_results")}
    except sqlite3.Error:
        return set()


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_ends_a_scan_of_silent_peers_at_once_and_keeps_finished_records(
    tmp_path: Path, presses: int
) -> None:
    # Given three peers that accept and never answer, and one exposed PACS, on loopback
    with contextlib.ExitStack() as stack:
        port, (_, *silent) = stack.enter_context(one_port(
            lambda p: ExposedPacs(make_studies(2, seed=3), host="127.0.0.120", port=p),
            *[lambda p, i=i: run_in_thread(Silent(host=f"127.0.0.{121 + i}", port=p)) for i in range(3)],
        ))  # fmt: skip
        out, db = tmp_path / "report.json", tmp_path / "f.db"
        # When a scan with a long association timeout is under way
        proc = stack.enter_context(subprocess.Popen(
            [sys.executable, "-m", "pacsradar", "scan", "127.0.0.120-123", "-p", str(port),
             "--no-default-ports", "--only", "dicom", "--assoc-timeout", str(ASSOC_TIMEOUT),
             "--db", f"sqlite:///{db}", "--output", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path,
        ))  # fmt: skip
        stack.callback(lambda: proc.poll() is None and proc.kill())
        _wait_for(lambda: all(s.server.connections for s in silent))
        # (and the PACS's record is finished: it is in the store)
        _wait_for(lambda: _stored_hosts(db) == {"127.0.0.120"})
        # And the user presses Ctrl-C (once, or twice: again once the first one is answered)
        proc.send_signal(signal.SIGINT)
        stderr = ""
        if presses == 2:
            assert proc.stderr is not None
            for line in proc.stderr:
                stderr += line
                if "stopping:" in line:
                    break
            proc.send_signal(signal.SIGINT)
        stderr += proc.communicate(timeout=ASSOC_TIMEOUT)[1]
    # Then it exits 130 without waiting for the silent peers, with one line and no traceback
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr.count("stopping: keeping the records of") == 1, stderr[-2000:]
    if presses == 1:
        # And the finished endpoint is in the report and the store, the others are not
        report = json.loads(out.read_text())
        assert report["stats"]["interrupted"] is True
        hosts = {r["endpoint"]["host"] for r in report["results"]}
        assert hosts <= {"127.0.0.120"}
        assert "stopping: keeping the records of 1 finished endpoint…" in stderr, stderr[-2000:]
        assert hosts == {"127.0.0.120"}
        scans = subprocess.run(
            [sys.executable, "-m", "pacsradar", "scans", "--db", f"sqlite:///{db}", "--json"],
            capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip
        assert scans.returncode == 0, scans.stderr[-2000:]
        assert json.loads(scans.stdout)[0]["scan_id"] == report["scan_id"]
