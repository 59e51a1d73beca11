"""The tool must never become the leak: a debug-level CLI scan of a PACS full of canary
patients writes no canary byte to stdout, stderr, logs, reports or the database."""

from __future__ import annotations

import os
from pathlib import Path

from dicom.helpers import debug_scans, leaks
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies

CANARY = "CANARYZQX"


def test_debug_scan_leaks_no_canary(tmp_path: Path) -> None:
    # Given a PACS whose synthetic patients carry a canary in names, IDs, addresses, accessions
    studies = make_studies(4, seed=9, canary=CANARY)
    assert CANARY in str(studies[0].PatientName)
    db = tmp_path / "findings.db"
    env = {**os.environ, "PACSRADAR_DB": f"sqlite:///{db}", "NO_COLOR": "1", "COLUMNS": "200"}
    with ExposedPacs(studies, host="127.0.0.80", allow_store=True) as pacs:
        # When the CLI scans it at debug level, with JSON to a file and JSONL to stdout
        runs = debug_scans("127.0.0.80", pacs.port, tmp_path, env)
    # Then the scan really found the exposure (so the canary values were on the wire) ...
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    assert b"DICOM-QUERY-PHI" in (tmp_path / "report.json").read_bytes()
    assert b"DICOM-QUERY-PHI" in runs[1].stdout
    # ... and no byte of any output (report, database, logs) carries it
    assert leaks(CANARY, runs, tmp_path) == []
