"""`scan -o json` and `report -f json` write one document, valid against the shipped schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pacsradar_samples as S
import pytest

from pacsradar.errors import UsageError
from pacsradar.render import to_json
from pacsradar.report import ReportContext, render
from pacsradar.report.jsondoc import SCHEMA_PATH, SCHEMA_VERSION, load_document, schema_text
from pacsradar.store.views import AcceptedRisk

NOW = datetime(2026, 1, 6, tzinfo=UTC)
RISK = AcceptedRisk(
    id=1,
    check_id=S.TLS,
    asset="127.0.0.2",
    reason="accepted until the upgrade",
    expires_at=NOW + timedelta(days=30),
    created_at=NOW,
)


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def errors(document: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]


def test_the_shipped_schema_is_the_one_the_models_give() -> None:
    # Given the schema file in the package / Then it is what the models generate today
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), "run: python -m pacsradar.docs"


def test_report_json_and_scan_json_share_the_schema() -> None:
    # Given a stored scan's report context (with an accepted risk) and the same scan's report
    report = S.lab_report()
    ctx = ReportContext(report=report, accepted=(RISK,), generated_at=NOW)
    # When rendered as `report -f json` does and as `scan -o json` does
    from_report = json.loads(render("json", ctx))
    from_scan = json.loads(to_json(report))
    # Then both validate against the schema and carry its version
    assert errors(from_report) == [] and errors(from_scan) == []
    assert from_report["schema_version"] == from_scan["schema_version"] == SCHEMA_VERSION
    # And they are the same document but for what only the store knows
    assert len(from_report.pop("accepted_risks")) == 1 and from_scan.pop("accepted_risks") == []
    assert from_report == from_scan
    # And each reads back as the ScanReport it came from
    assert load_document(render("json", ctx)) == load_document(to_json(report)) == report


def test_the_schema_refuses_what_is_not_a_document() -> None:
    # Given a document with a wrong version, one without exposure, and one with an unknown key
    good = json.loads(to_json(S.lab_report()))
    wrong = {**good, "schema_version": 99}
    missing = {k: v for k, v in good.items() if k != "exposure"}
    extra = {**good, "patient_names": []}
    # Then the schema rejects each, and load_document refuses another version
    assert errors(wrong) and errors(missing) and errors(extra)
    with pytest.raises(UsageError, match="schema_version"):
        load_document(json.dumps(wrong))


def test_scan_cli_json_output_validates(tmp_path: Path) -> None:
    # Given a scan of one closed loopback port, written as JSON by the CLI itself
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "pacsradar", "scan", "127.0.0.1", "-p", "9", "--no-default-ports",
         "--only", "dicom", "--no-store", "-o", "json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False,
    )  # fmt: skip
    # Then stdout is one document valid against the schema
    assert proc.returncode == 0, proc.stderr[-2000:]
    document = json.loads(proc.stdout)
    assert errors(document) == []
    assert document["schema_version"] == SCHEMA_VERSION
