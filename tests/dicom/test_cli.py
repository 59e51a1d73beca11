"""The CLI: usage errors, exit codes, Ctrl-C keeps partial results. Traffic: 127.0.0.0/8 only."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies

ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsradar", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        cwd=cwd,
        check=False,
    )


def test_typo_in_target_is_a_usage_error(tmp_path: Path) -> None:
    # Given a mistyped address, When scanning, Then exit 2 with the bad token named, no traceback
    result = run_cli("scan", "127.0.0.300", "--no-store", cwd=tmp_path)
    assert result.returncode == 2
    assert "127.0.0.300" in result.stderr
    assert "Traceback" not in result.stderr


def test_large_scope_needs_explicit_flag(tmp_path: Path) -> None:
    result = run_cli("scan", "127.0.0.0/8", "--no-store", cwd=tmp_path)
    assert result.returncode == 2
    assert "--allow-large-scope" in result.stderr


def test_fail_on_sets_exit_code(tmp_path: Path) -> None:
    # Given an exposed PACS, When scanned with --fail-on high, Then exit 1; with critical+none, 1 too
    with ExposedPacs(make_studies(2, seed=1), host="127.0.0.90") as pacs:
        port = str(pacs.port)
        failing = run_cli(
            "scan",
            "127.0.0.90",
            "-p",
            port,
            "--only",
            "dicom",
            "--no-store",
            "--fail-on",
            "high",
            "-f",
            "json",
            cwd=tmp_path,
        )
        passing = run_cli(
            "scan", "127.0.0.90", "-p", port, "--only", "dicom", "--no-store", "-f", "json", cwd=tmp_path
        )
    assert failing.returncode == 1, failing.stderr[-2000:]
    assert passing.returncode == 0, passing.stderr[-2000:]
    report = json.loads(passing.stdout)
    assert any(f["check_id"] == "DICOM-ANY-AE" for r in report["results"] for f in r["findings"])


def test_ctrl_c_stops_cleanly_and_keeps_partial_results(tmp_path: Path) -> None:
    # Given a slow scan (rate-limited sweep of closed loopback ports)
    out = tmp_path / "partial.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pacsradar",
            "scan",
            "127.0.8.0/22",
            "-p",
            "9",
            "--only",
            "dicom",
            "--rate",
            "40",
            "--db",
            f"sqlite:///{tmp_path / 'c.db'}",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=tmp_path,
    )
    # When the user presses Ctrl-C part-way (once the store shows finished endpoints: an
    # event, not a guess of how long a busy machine takes to start)
    _wait_for_stored_results(tmp_path / "c.db", proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    # Then it exits 130, writes the report, and says the results are partial
    assert proc.returncode == 130, stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["stats"]["interrupted"] is True
    assert 0 < report["stats"]["endpoints_done"] < 1024



def _wait_for_stored_results(db: Path, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Poll the scan's SQLite store (read-only) until it holds a finished endpoint."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    # a row each, or as columns (dead_groups: refused ports, issue 26)
                    stored = "SELECT (SELECT count(*) FROM scan_results) + (SELECT count(*) FROM dead_groups)"
                    if conn.execute(stored).fetchone()[0] > 0:
                        return
            except sqlite3.Error:
                pass  # not migrated yet, or locked by the writer
        time.sleep(0.25)  # a polling interval: the outcome is the stored row, not the time
    raise AssertionError(f"no finished endpoint was stored (scan exit status {proc.poll()})")

def test_resume_finishes_a_killed_scan_without_redoing_work(tmp_path: Path) -> None:
    # Given a stored scan that was SIGKILLed part-way through a slow sweep of closed ports
    env = {**ENV, "PACSRADAR_DB": f"sqlite:///{tmp_path / 'f.db'}"}
    args = ["scan", "127.0.8.0/23", "-p", "9", "--only", "dicom", "-f", "json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pacsradar", *args, "--rate", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    # (killed once the store holds some finished endpoints: a busy machine starts slower)
    _wait_for_stored_results(tmp_path / "f.db", proc)
    proc.kill()
    proc.communicate(timeout=30)
    scans = subprocess.run(
        [sys.executable, "-m", "pacsradar", "scans", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    scan_id = json.loads(scans.stdout)[0]["scan_id"]
    # When it is resumed
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pacsradar",
            "scan",
            "--resume",
            scan_id,
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    # Then it probes only what the killed run had not finished, under the same scan id, with
    # the stored plan (targets, port 9 only, DICOM only, rate 40)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["scan_id"] == scan_id
    assert 0 < report["stats"]["endpoints_done"] < 512


def test_every_command_has_working_help(tmp_path: Path) -> None:
    # Given every subcommand, When asked for --help, Then it renders without error
    for command in ("scan", "demo", "files", "scans", "diff", "monitor", "report", "serve", "risk", "checks"):
        result = run_cli(command, "--help", cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr[-1000:])
        assert "Usage" in result.stdout
