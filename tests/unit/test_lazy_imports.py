"""Issue 26: a DICOM-only scan starts fast because it imports only what it uses. The web, SMB,
FTP, dashboard, distributed and ORM stacks stay unimported unless a scan needs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from pacsradar.report.jsondoc import document_json, load_document

#: Heavy packages a `scan --only dicom` has no use for (on a store whose schema is current).
LAZY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "httpx",
    "smbprotocol",
    "aioftp",
    "distributed",
    "dask",
    "sqlalchemy",
    "alembic",
)

#: Runs the CLI in-process (as the console script does), then prints the loaded LAZY modules.
WRAPPER = """
import json, sys
from pacsradar.cli import main
sys.argv = ["pacsradar", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
lazy = %r
loaded = sorted(m for m in sys.modules if m.split(".")[0] in lazy or m in lazy)
sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
sys.exit(code)
"""


def _closed_port() -> int:
    # A port that was just free on 127.0.0.1: nothing listens there (bound, then closed).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scan(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    argv = ["scan", "127.0.0.1", "-p", str(_closed_port()), "--no-default-ports", "--only", "dicom"]
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER % (LAZY,), *argv, "--no-progress", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED ")][-1]
    return proc, json.loads(line.removeprefix("LOADED "))


def test_dicom_only_scan_does_not_import_the_other_stacks(tmp_path: Path) -> None:
    # Given a store with a current schema (the first scan creates it, which needs the ORM)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    _scan(tmp_path, "--db", db, "-f", "json", "-o", str(tmp_path / "first.json"))
    # When a DICOM-only scan runs on it, and another without the store
    _, with_store = _scan(tmp_path, "--db", db, "-f", "json", "-o", str(tmp_path / "out.json"))
    proc, without = _scan(tmp_path, "--no-store", "-f", "json")
    # Then none of the lazy stacks was imported
    assert with_store == [] and without == []
    # And the streamed document is the one-shot document of the same report, plus a newline
    for text in ((tmp_path / "out.json").read_text(encoding="utf-8"), proc.stdout):
        assert text == document_json(load_document(text)) + "\n"
