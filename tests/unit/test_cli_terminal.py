"""Terminal output that fits (issue 25, point 3): listings at 80 and 120 columns and piped,
-o formats from the file ending, errors that name their file, --db as a path, severities."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from pacsradar.checks import CheckSpec
from pacsradar.cli.common import OutputTarget, emit, output_target, program
from pacsradar.cli.listing import print_listing
from pacsradar.errors import UsageError
from pacsradar.models import Endpoint, ScanReport, Severity
from pacsradar.registry import catalogue
from pacsradar.store.plain import db_url

SCAN_IDS = ("20261207T204146Z-170d2a", "20261208T010203Z-9f00aa")
COLUMNS = ("scan", "started (UTC)", "status", "endpoints", "findings", "distinct patients",
           "per-service patients", "scope")  # fmt: skip
ROWS = [
    (sid, "2026-12-07 20:41", "finished", "1048576/1048576", "1C 2H 3M 0L 4I", "≥ 12,345",
     "23,456 (3 services)", "192.0.2.0/24, 198.51.100.0/24")
    for sid in SCAN_IDS
]  # fmt: skip


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_scan_ids_are_whole_at_any_width(width: int) -> None:
    # Given a terminal of WIDTH columns
    buf = io.StringIO()
    out = Console(file=buf, width=width, force_terminal=True, color_system=None)
    # When the scans are listed
    print_listing(out, COLUMNS, ROWS, keep=("scan",), drop_order=("scope", "started (UTC)"))
    text = buf.getvalue()
    # Then every id is on one line, whole; no line is wider than the terminal
    for sid in SCAN_IDS:
        assert any(sid in line for line in text.splitlines()), text
    assert max(len(line) for line in text.splitlines()) <= width, text
    # And columns left out for room are named, at 80 columns and below only
    assert ("not shown at this width" in text) == (width <= 80), text


def test_piped_listings_are_one_tab_separated_line_per_row() -> None:
    # Given a listing that is not going to a terminal
    buf = io.StringIO()
    out = Console(file=buf, width=80, force_terminal=False)
    # When it is printed
    print_listing(out, COLUMNS, [(*ROWS[0][:-1], "a\tb\nc")], keep=("scan",))
    lines = buf.getvalue().splitlines()
    # Then a # header names the columns and each row is one line, every value whole
    assert lines[0] == "# " + "\t".join(COLUMNS)
    assert lines[1].split("\t") == [*ROWS[0][:-1], "a b c"]


def _in_pty(argv: list[str], columns: int) -> str:
    """What ``argv`` prints on a terminal of ``columns`` columns."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["NO_COLOR"] = "1"
    proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    proc.wait(timeout=60)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 120])
def test_checks_at_80_and_120_columns_keep_ids_whole(columns: int) -> None:
    # When `pacsradar checks` runs on a real terminal of 80 or 120 columns
    text = _in_pty([sys.executable, "-m", "pacsradar", "checks"], columns)
    # Then every check id appears whole on its row
    for info in catalogue():
        assert info.id in text, (info.id, text[:3000])


def test_checks_piped_is_greppable_and_says_why_severities_vary() -> None:
    # When `pacsradar checks | grep DICOM-KNOWN-CVE`
    done = subprocess.run(
        [sys.executable, "-m", "pacsradar", "checks"], capture_output=True, text=True, timeout=60, check=True
    )
    hits = [line for line in done.stdout.splitlines() if "DICOM-KNOWN-CVE" in line]
    # Then one line, tab-separated, whose severity says that a finding may be rated worse
    assert len(hits) == 1
    fields = hits[0].split("\t")
    assert fields[0] == "DICOM-KNOWN-CVE"
    assert fields[1].startswith("high (varies: the worst rating among the CVEs")


def test_a_finding_rated_otherwise_than_its_check_says_why() -> None:
    # Given a check whose default is high
    spec = CheckSpec(
        id="X-TEST", title="t", severity=Severity.HIGH, category="c", description="d", remediation="r",
        severity_varies="the worst CVE's rating",
    )  # fmt: skip
    endpoint = Endpoint(host="192.0.2.1", port=104)
    # When a finding is critical (with a reason) or at the default
    raised = spec.finding(
        endpoint, summary="s", severity=Severity.CRITICAL, severity_reason="CVE-1 is critical"
    )
    plain = spec.finding(endpoint, summary="s", severity=Severity.HIGH)
    # Then the raised one carries why, the other nothing
    assert raised.evidence["severity_basis"] == "critical: raised from the check's high by CVE-1 is critical"
    assert "severity_basis" not in plain.evidence


def _report() -> ScanReport:
    return ScanReport(scan_id="20261207T204146Z-170d2a", version="0.1.0", started_at=datetime.now(UTC))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("r.json", "json"), ("r.jsonl", "jsonl"), ("r.txt", "table"), ("r.html", "html"),
     ("r.sarif", "sarif"), ("r.csv", "csv"), ("r.md", "md")],
)  # fmt: skip
def test_output_format_comes_from_every_ending(tmp_path: Path, name: str, fmt: str) -> None:
    # Given -o FILE without -f, When the target is resolved, Then the ending names the format
    target = output_target(None, tmp_path / name)
    assert target.format == fmt
    # And the report is written in it
    report = _report()
    emit(report, target, Console(file=io.StringIO()))
    text = (tmp_path / name).read_text()
    assert text.strip()
    if fmt == "html":
        assert text.lstrip().lower().startswith("<!doctype html")


def test_pdf_and_unknown_endings_say_which_command_writes_them(tmp_path: Path) -> None:
    # When -o names a PDF, Then the error points to `report -f pdf`
    with pytest.raises(UsageError, match=r"report -f pdf -o '.*r\.pdf'"):
        output_target(None, tmp_path / "r.pdf")
    # And an unknown ending lists the formats
    with pytest.raises(UsageError, match=r"cannot tell the format of .*r\.xyz.*html"):
        output_target(None, tmp_path / "r.xyz")


def test_an_output_that_cannot_be_created_names_the_file_before_the_scan() -> None:
    # Given a directory that exists but where no file can be created (/proc)
    # When the output is checked, Then the error names the file and the reason
    with pytest.raises(UsageError, match=r"cannot write the report to '/proc/r\.json': No such file"):
        output_target(None, Path("/proc/r.json"))
    assert not Path("/proc/r.json").exists()


def test_emit_write_errors_name_the_file(tmp_path: Path) -> None:
    # Given a target whose directory vanished after the check
    gone = tmp_path / "gone"
    gone.mkdir()
    target = OutputTarget("json", gone / "r.json")
    gone.rmdir()
    # When the report is written, Then the error names the file
    with pytest.raises(UsageError, match=r"cannot write the report to '.*gone/r\.json'"):
        emit(_report(), target, Console(file=io.StringIO()))


def test_db_takes_a_plain_path_as_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given --db values as users type them
    monkeypatch.chdir(tmp_path)
    # Then a path is a SQLite file (made absolute), a URL is kept
    assert db_url("/tmp/x.db") == "sqlite:////tmp/x.db"
    assert db_url("findings.db") == f"sqlite:///{tmp_path / 'findings.db'}"
    assert db_url("sqlite:///rel.db") == "sqlite:///rel.db"
    assert db_url("postgresql+psycopg://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"


def test_scan_and_scans_with_a_plain_db_path(tmp_path: Path) -> None:
    # Given `--db PATH` (no sqlite:/// prefix)
    db = tmp_path / "x.db"
    env = {**os.environ, "NO_COLOR": "1"}
    scan = subprocess.run(
        [sys.executable, "-m", "pacsradar", "scan", "127.0.25.40", "-p", "9", "--db", str(db)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    # Then the scan is stored there and `scans` lists it, piped, with the whole id first
    assert scan.returncode == 0, scan.stderr
    scan_id = scan.stdout.splitlines()[0].removeprefix("# pacsradar scan ")
    listed = subprocess.run(
        [sys.executable, "-m", "pacsradar", "scans", "--db", str(db)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split("\t")[0] == scan_id
    # And at 80 columns the id is whole too
    assert scan_id in _in_pty([sys.executable, "-m", "pacsradar", "scans", "--db", str(db)], 80)
    # And a unique prefix of the id names the scan, as a short hash does in git
    short = subprocess.run(
        [sys.executable, "-m", "pacsradar", "report", scan_id[:18], "-f", "json", "--db", str(db)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert short.returncode == 0, short.stderr
    assert json.loads(short.stdout)["scan_id"] == scan_id
    unknown = subprocess.run(
        [sys.executable, "-m", "pacsradar", "report", "1999", "--db", str(db)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert unknown.returncode == 2 and "no stored scan '1999'" in unknown.stderr


def test_printed_commands_run_pacsradar_the_way_it_was_started(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given pacsradar started as the README's .venv/bin/pacsradar (not on PATH)
    monkeypatch.setattr(sys, "argv", [".venv/bin/pacsradar", "scan"])
    monkeypatch.setenv("PATH", "/nonexistent")
    # Then the commands it prints start that way
    assert program() == ".venv/bin/pacsradar"
    # And started with `python -m pacsradar`, they use this interpreter
    monkeypatch.setattr(sys, "argv", ["/x/pacsradar/__main__.py"])
    assert program() == f"{sys.executable} -m pacsradar"


def test_progress_shows_endpoints_per_second_and_time_left() -> None:
    # Given the progress observer on a terminal, with a clock the test moves
    from pacsradar.cli.common import ProgressObserver
    from pacsradar.models import TargetResult

    observer = ProgressObserver(
        Console(file=io.StringIO(), width=160, force_terminal=True, color_system=None)
    )
    now = [1000.0]
    observer.progress.get_time = lambda: now[0]  # type: ignore[method-assign]
    # When a /16 on the default ports is a quarter done after 270 seconds at 1,000 endpoints/s
    observer.on_start("20261207T204146Z-170d2a", 1_081_344)
    result = TargetResult(endpoint=Endpoint(host="192.0.2.1", port=104), reachable=False)
    assert observer.task is not None
    for _ in range(27):
        now[0] += 10.0
        observer.progress.update(observer.task, advance=10_000)
    observer.on_result(result)
    shown = io.StringIO()
    Console(file=shown, width=160, color_system=None).print(
        observer.progress.make_tasks_table(observer.progress.tasks)
    )
    text = shown.getvalue()
    observer.progress.stop()
    # Then it shows the rate and the time left (about 13.5 minutes for the 811,343 to go)
    assert "1,000/s" in text, text
    assert "0:13:3" in text and "left" in text, text
