"""`pacsradar checks`: the registry as a listing, like `nmap --script-help` / `nuclei -tl`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pacsradar.registry import catalogue

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "COLUMNS": "250"}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pacsradar", *args],
        capture_output=True, text=True, timeout=120, env=ENV, cwd=cwd, check=False,
    )  # fmt: skip


def test_checks_json_lists_every_check_with_its_fields(tmp_path: Path) -> None:
    # When the checks are listed as JSON
    proc = run_cli("checks", "--json", cwd=tmp_path)
    # Then every registry id is there with severity, protocol, intrusive and references
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = json.loads(proc.stdout)
    assert [c["id"] for c in listed] == [c.id for c in catalogue()]
    for entry in listed:
        assert {"severity", "protocol", "intrusive", "references"} <= set(entry)
        assert entry["references"] and all("title" in r for r in entry["references"])
    retrieve = next(c for c in listed if c["id"] == "DICOM-RETRIEVE-OPEN")
    assert retrieve["intrusive"] == "opt-in" and retrieve["protocol"] == ["dicom"]


def test_checks_table_and_family_filter(tmp_path: Path) -> None:
    # When the share checks are listed as a table
    proc = run_cli("checks", "--family", "share", cwd=tmp_path)
    # Then only the share family's ids are shown
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SHARE-ANON-DICOM" in proc.stdout and "DICOM-ANY-AE" not in proc.stdout
    # And an unknown family is a usage error naming the choices, without a traceback
    bad = run_cli("checks", "--family", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "dicom, web, share, files" in bad.stderr
    assert "Traceback" not in bad.stderr
