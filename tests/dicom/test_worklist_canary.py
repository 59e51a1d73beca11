"""The worklist and UPS checks never become the leak (issue 24): a debug-level CLI scan of a
worklist full of canary patients, physicians and accession numbers writes no canary byte to
stdout, stderr, logs, reports or the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab.worklist import WorklistScp, make_worklist

CANARY = "CANARYWLQ"
_CLI = (sys.executable, "-m", "pacsradar", "scan")
_DEBUG = ("--only", "dicom", "--log-level", "debug")


def test_debug_worklist_scan_leaks_no_canary(tmp_path: Path) -> None:
    # Given an MWL + UPS SCP whose scheduled patients carry a canary in every identifying value
    scheduled = make_worklist(canary=CANARY)
    assert CANARY in str(scheduled.items[0].PatientName)
    report = tmp_path / "report.json"
    db = tmp_path / "findings.db"
    env = {**os.environ, "PACSRADAR_DB": f"sqlite:///{db}", "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PACSRADAR_LINK_KEY", None)
    with WorklistScp(scheduled, host="127.0.0.82") as scp:
        # When the CLI scans it at debug level, JSON to a file, JSONL and a table to stdout
        runs = [
            subprocess.run(
                [*_CLI, "127.0.0.82", "--ports", str(scp.port), *_DEBUG, *args],
                capture_output=True,
                timeout=120,
                env=env,
                cwd=tmp_path,
                check=False,
            )
            for args in (["-f", "json", "--output", str(report)], ["-f", "jsonl"], ["-f", "table"])
        ]
    # Then the scan found both exposures (so the canary values were on the wire) ...
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    body = report.read_bytes()
    assert b"DICOM-WORKLIST-PHI" in body and b"DICOM-UPS-PHI" in body
    assert b"scheduled in worklists" in runs[2].stdout
    # ... and no byte of any output carries it
    blobs = {"report": body}
    for i, r in enumerate(runs):
        blobs[f"stdout{i}"] = r.stdout
        blobs[f"stderr{i}"] = r.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
    assert [name for name, blob in blobs.items() if CANARY.encode() in blob] == []
