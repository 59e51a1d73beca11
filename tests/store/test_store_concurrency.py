"""The store under concurrency (issue 11, point 6): scans started at once on a new database all
run and are all stored, on SQLite and on PostgreSQL; a current store opens without Alembic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from pacsradar.store import Store
from pacsradar.store.base import MIGRATIONS
from pacsradar.store.plain import SCHEMA_REVISION

ENV = {**os.environ, "NO_COLOR": "1"}
SCANS = 4


def test_the_fast_path_revision_is_alembics_head() -> None:
    # Given the migration scripts, Then SCHEMA_REVISION names their head (bump it with a migration)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_REVISION


def test_concurrent_scans_on_a_new_database_all_run_and_are_stored(store_url: str, tmp_path: Path) -> None:
    # Given a database nobody has opened yet
    # When several scans (of a closed loopback port) start at the same moment
    def scan(i: int) -> list[str]:
        return [sys.executable, "-m", "pacsradar", "scan", f"127.0.0.{141 + i}", "-p", "9",
                "--no-default-ports", "--only", "dicom", "--db", store_url, "--no-progress",
                "-f", "json"]  # fmt: skip

    procs = [
        subprocess.Popen(scan(i), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        for i in range(SCANS)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    outcomes = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    # Then every one of them ran (no "could not migrate the store")
    for code, _out, err in outcomes:
        assert code == 0, err[-2000:]
        assert "could not migrate" not in err
    # And the store holds all of them, at the current schema revision
    with Store(store_url) as store:
        assert store.schema_revision() == SCHEMA_REVISION
        stored = {s.scan_id for s in store.list_scans()}
    assert {json.loads(out)["scan_id"] for _, out, _ in outcomes} <= stored


def test_a_current_store_opens_without_importing_alembic(store_url: str) -> None:
    # Given a store already migrated to head
    Store(store_url).close()
    # When a new process opens it
    probe = (
        "import sys; from pacsradar.store import Store; Store(sys.argv[1]).close(); "
        "print('alembic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, store_url],
        capture_output=True, text=True, env=ENV, timeout=120, check=False,
    )  # fmt: skip
    # Then Alembic was never imported (one version query instead)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
