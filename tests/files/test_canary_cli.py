"""PHI canary and CLI: no synthetic patient value or file name reaches any output."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from filesynth import make_template, study_values, write_corpus
from sharelab import CANARY, Server, ShareTree

from pacsradar.files.local import audit_paths
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.remote import audit_url

PE = b"MZ" + b"\x00" * 0x3A + b"\x40\x00\x00\x00" + b"PE\x00\x00"


def _canary_tree(root: Path) -> None:
    names = [f"{CANARY}^EVE", f"{CANARY}^MALLORY"]
    ids = [f"{CANARY}77", f"{CANARY}88"]
    write_corpus(
        root / f"{CANARY}_dir",
        make_template("CT"),
        study_values(2, 1, 2, names=names, ids=ids),
        name="{PatientName}_{PatientID}_{n}.dcm",
    )
    vals = next(study_values(1, 1, 1, names=names, ids=ids))
    (root / f"{CANARY}_pe.dcm").write_bytes(make_template("CT", preamble=PE).render(vals))
    (root / f"{CANARY}_broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + CANARY.encode() * 5)


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", "from pacsradar.cli import main; main()", *args],
        capture_output=True,
        timeout=240,
        check=False,
    )


def test_cli_outputs_and_debug_logs_hold_no_canary(tmp_path: Path) -> None:
    # Given patients whose names, IDs and file names carry a canary
    corpus = tmp_path / "corpus"
    _canary_tree(corpus)
    needle = CANARY.encode()
    for fmt in ("table", "json", "jsonl"):
        out = tmp_path / f"report.{fmt}"
        # When the CLI runs at debug log level in every output format
        proc = _run(
            "files",
            str(corpus),
            "-f",
            fmt,
            "--output",
            str(out),
            "--log-level",
            "debug",
            "--no-progress",
        )
        proc2 = _run("files", str(corpus), "-f", fmt, "--log-level", "debug", "--fail-on", "high")
        # Then it succeeded / found what it should (exit 1 for --fail-on high) ...
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc2.returncode == 1
        # ... and no canary byte is in stdout, stderr or the report file
        for blob in (proc.stdout, proc.stderr, proc2.stdout, proc2.stderr, out.read_bytes()):
            assert needle not in blob
    report = json.loads((tmp_path / "report.json").read_text())
    ids = {f["check_id"] for r in report["results"] for f in r["findings"]}
    assert ids == {"FILE-PHI", "FILE-PREAMBLE-EXECUTABLE"}


def test_show_paths_is_the_only_way_paths_appear(tmp_path: Path) -> None:
    # Given the canary tree
    corpus = tmp_path / "corpus"
    _canary_tree(corpus)
    # When --show-paths is given
    proc = _run("files", str(corpus), "-f", "json", "--show-paths")
    # Then the executable's path is listed (the user asked for it), but still no patient value
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    finding = next(
        f for r in report["results"] for f in r["findings"] if f["check_id"] == "FILE-PREAMBLE-EXECUTABLE"
    )
    assert finding["evidence"]["paths"] == [f"{CANARY}_pe.dcm"]
    assert f"{CANARY}^EVE".encode() not in proc.stdout


@pytest.mark.peers
def test_share_audits_at_debug_level_hold_no_canary(
    caplog: pytest.LogCaptureFixture,
    vsftpd: Server,
    smbd: Server,
    nginx: Server,
    share_tree: ShareTree,
    tmp_path: Path,
) -> None:
    # Given shares whose files and patients carry the canary, and DEBUG capture of every logger
    caplog.set_level(logging.DEBUG)
    corpus = tmp_path / "corpus"
    _canary_tree(corpus)
    # When local and share audits run in-process
    reports = [
        audit_paths([str(corpus)], FileAuditOptions(workers=1)).model_dump_json(),
        audit_url(f"ftp://{vsftpd.host}:{vsftpd.port}/", FileAuditOptions()).model_dump_json(),
        audit_url(f"smb://{smbd.host}:{smbd.port}", FileAuditOptions()).model_dump_json(),
        audit_url(f"http://{nginx.host}:{nginx.port}/", FileAuditOptions()).model_dump_json(),
    ]
    # Then neither the reports nor any captured log record holds the canary
    for text in reports:
        assert CANARY not in text
        assert "SHARE-ANON-DICOM" in text or "FILE-PHI" in text
    assert CANARY not in caplog.text
    # And the CLI run against a share at debug level is clean too
    proc = _run("files", f"smb://{smbd.host}:{smbd.port}", "-f", "json", "--log-level", "debug")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert CANARY.encode() not in proc.stdout + proc.stderr


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    # Given a path that does not exist / When the CLI is asked to audit it
    proc = _run("files", str(tmp_path / "nope"), "-f", "json")
    # Then it exits with the usage code, naming the path the user gave, in one line
    assert proc.returncode == 2
    assert b"no such file or directory" in proc.stderr and b"nope" in proc.stderr
    assert b"Traceback" not in proc.stderr
