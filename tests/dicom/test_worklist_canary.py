"""The worklist and UPS checks never become the leak (issue 24): a debug-level CLI scan of a
worklist full of canary patients, physicians and accession numbers writes no canary byte to
stdout, stderr, logs, reports or the database."""

from __future__ import annotations

import os
from pathlib import Path

from dicom.helpers import debug_scans, leaks
from lab.worklist import WorklistScp, make_worklist

CANARY = "CANARYWLQ"


def test_debug_worklist_scan_leaks_no_canary(tmp_path: Path) -> None:
    # Given an MWL + UPS SCP whose scheduled patients carry a canary in every identifying value
    scheduled = make_worklist(canary=CANARY)
    assert CANARY in str(scheduled.items[0].PatientName)
    db = tmp_path / "findings.db"
    env = {**os.environ, "PACSRADAR_DB": f"sqlite:///{db}", "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("PACSRADAR_LINK_KEY", None)
    with WorklistScp(scheduled, host="127.0.0.82") as scp:
        # When the CLI scans it at debug level, JSON to a file, JSONL and a table to stdout
        runs = debug_scans("127.0.0.82", scp.port, tmp_path, env)
    # Then the scan found both exposures (so the canary values were on the wire) ...
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    body = (tmp_path / "report.json").read_bytes()
    assert b"DICOM-WORKLIST-PHI" in body and b"DICOM-UPS-PHI" in body
    assert b"scheduled in worklists" in runs[2].stdout
    # ... and no byte of any output (report, database, logs) carries it
    assert leaks(CANARY, runs, tmp_path) == []
