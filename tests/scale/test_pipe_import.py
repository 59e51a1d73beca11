"""``--import -`` (issue 25, point 5): masscan or zmap output audited from a pipe as it arrives.

Loopback tests feed the pipe by hand (so the test decides when a line arrives and proves that
the audit started before the pipe closed); the masscan test runs the real masscan (Debian)
inside the test-made namespace pair (tests/lab/netns.py), piped into ``pacsradar scan``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.hostile import Silent, run_in_thread
from lab.netns import SCAN_ADDR, SparseNet, netns_skip_reason
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies
from pacsradar.session import stored_plan
from pacsradar.store import Store

pytestmark = pytest.mark.timeout(240)

ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}


def _wait_for(predicate: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _scan(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pacsradar", "scan", "--import", "-", "--only", "dicom", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=ENV, cwd=tmp_path,
    )  # fmt: skip


def _send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def test_piped_masscan_lines_are_audited_as_they_arrive_and_the_plan_keeps_them(tmp_path: Path) -> None:
    # Given a peer that accepts and never answers, and an exposed PACS, on loopback
    db = tmp_path / "f.db"
    with contextlib.ExitStack() as stack:
        # the PACS binds port 0; the silent peer takes the same port on its own address
        port = stack.enter_context(ExposedPacs(make_studies(2, seed=5), host="127.0.25.2", port=0)).port
        silent = stack.enter_context(run_in_thread(Silent(host="127.0.25.1", port=port)))
        # When masscan -oL lines are piped into a scan, one at a time
        proc = stack.enter_context(_scan(tmp_path, "--assoc-timeout", "1", "--db", str(db), "-f", "json"))
        stack.callback(lambda: proc.poll() is None and proc.kill())
        _send(proc, "#masscan")
        _send(proc, f"open tcp {port} 127.0.25.1 1700000000")
        # Then the first endpoint is audited while the pipe is still open (nothing waits for EOF)
        _wait_for(lambda: silent.server.connections > 0, "the first piped endpoint was audited")
        assert proc.poll() is None
        _send(proc, f"open tcp {port} 127.0.25.2 1700000001")
        _send(proc, "# end")
        stdout, stderr = proc.communicate(timeout=120)  # closes the pipe: the stream ends
    assert proc.returncode == 0, stderr[-2000:]
    # And the PACS that arrived second was audited in full
    report = json.loads(stdout)
    found = {(f["endpoint"]["host"], f["check_id"]) for r in report["results"] for f in r["findings"]}
    assert ("127.0.25.2", "DICOM-QUERY-PHI") in found
    # And the stored plan holds exactly what arrived (so --resume restores it)
    with Store(f"sqlite:///{db}") as store:
        plan = stored_plan(store, report["scan_id"])
    assert plan.imports == (("127.0.25.1", port), ("127.0.25.2", port))


def test_ctrl_c_on_a_streamed_import_prints_the_resume_command_and_resume_finishes_it(
    tmp_path: Path,
) -> None:
    # Given a streamed import whose first endpoint never answers
    db = tmp_path / "f.db"
    with contextlib.ExitStack() as stack:
        # the PACS binds port 0; the silent peer takes the same port on its own address
        port = stack.enter_context(ExposedPacs(make_studies(2, seed=6), host="127.0.25.12", port=0)).port
        silent = stack.enter_context(run_in_thread(Silent(host="127.0.25.11", port=port)))
        proc = stack.enter_context(_scan(tmp_path, "--assoc-timeout", "30", "--db", str(db)))
        stack.callback(lambda: proc.poll() is None and proc.kill())
        _send(proc, f"127.0.25.11:{port}")
        _send(proc, f"127.0.25.12:{port}")
        _wait_for(lambda: silent.server.connections > 0, "the piped endpoint was audited")
        # When the user presses Ctrl-C while the pipe is still open
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        # Then it exits 130 and its last line is the exact command that finishes the scan
        assert proc.returncode == 130, stderr[-2000:]
        assert "Traceback" not in stderr
        last = stderr.strip().splitlines()[-1]
        # (started as `python -m pacsradar`, so that is the command it prints)
        prefix = f"interrupted; finish it with: {sys.executable} -m pacsradar scan --resume "
        assert last.startswith(prefix), stderr[-2000:]
        command = last.split(": ", 1)[1].split()
        assert command[-2:] == ["--db", str(db)]
        scan_id = command[5]
        # And the stored plan kept both arrived lines
        with Store(f"sqlite:///{db}") as store:
            assert set(stored_plan(store, scan_id).imports) == {("127.0.25.11", port), ("127.0.25.12", port)}
        # And that command, without any pipe, finishes exactly those endpoints
        resumed = subprocess.run(
            [*command, "-f", "json"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120,
            check=False,
        )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["scan_id"] == scan_id
    assert {r["endpoint"]["host"] for r in report["results"]} <= {"127.0.25.11", "127.0.25.12"}


def test_iL_dash_reads_targets_from_standard_input(tmp_path: Path) -> None:
    # Given target lines on standard input (a CIDR, a list, a comment)
    with ExposedPacs(make_studies(1, seed=7), host="127.0.25.21", port=0) as pacs:
        port = pacs.port
        # When `scan -iL -` reads them
        done = subprocess.run(
            [sys.executable, "-m", "pacsradar", "scan", "-iL", "-", "-p", str(port), "--only", "dicom",
             "--no-store"],
            input="127.0.25.21  # the PACS\n127.0.25.22/31,127.0.25.24\n", capture_output=True, text=True,
            env=ENV, cwd=tmp_path, timeout=120, check=False,
        )  # fmt: skip
    # Then every target was scanned, and the PACS found
    assert done.returncode == 0, done.stderr[-2000:]
    assert "# 4 endpoints probed" in done.stdout
    assert any(line.startswith(f"finding\t127.0.25.21:{port}\tcritical") for line in done.stdout.splitlines())
    # And standard input cannot feed both -iL - and --import -
    both = subprocess.run(
        [sys.executable, "-m", "pacsradar", "scan", "-iL", "-", "--import", "-", "--no-store"],
        input="", capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr


@pytest.fixture(scope="module")
def sparse() -> SparseNet:
    reason = netns_skip_reason()
    if reason:
        pytest.skip(reason)
    if shutil.which("masscan") is None:
        pytest.skip("masscan is not installed (Debian package masscan)")
    net = SparseNet(["198.18.0.10", "198.18.0.41", "198.18.0.20"], tag=f"i25{os.getpid() % 10000}")
    net.open()
    try:
        net.start_scps([("198.18.0.10", 104), ("198.18.0.41", 11112)])
        yield net  # type: ignore[misc]
    finally:
        net.close()


@pytest.mark.peers
@pytest.mark.parametrize("output", ["-oL", "-oJ"])
def test_masscan_piped_into_scan_audits_what_it_finds(sparse: SparseNet, output: str) -> None:
    # Given masscan (SYN scan from NS_SCAN) over a /26 of the sparse internet: two SCPs, one host
    # that answers RST, the rest silent
    # masscan sends on the scan side's veth (named as tests/lab/netns.py names it)
    masscan = (
        f"masscan 198.18.0.0/26 -p104,11112 --rate 500 --wait 2 --adapter {sparse.scan_ns[:-1]}a "
        f"--adapter-ip {SCAN_ADDR} --router-ip 10.255.0.2 {output} -"
    )
    scan = (
        f"{sys.executable} -m pacsradar scan --import - --only dicom --no-default-ports -p 104 "
        "--no-store -f json"
    )
    # When its output is piped into pacsradar inside the namespace
    done = subprocess.run(
        sparse.argv(sparse.scan_ns, ["sh", "-c", f"{masscan} 2>/dev/null | {scan}"]),
        capture_output=True, text=True, timeout=180, env=ENV, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    # Then exactly the two SCPs masscan found were audited (on the port masscan found, not -p)
    audited = sorted((r["endpoint"]["host"], r["endpoint"]["port"]) for r in report["results"])
    assert audited == [("198.18.0.10", 104), ("198.18.0.41", 11112)]
    assert report["stats"]["endpoints_done"] == 2
    assert all(
        any(f["check_id"] == "DICOM-SERVICE-EXPOSED" for f in r["findings"]) for r in report["results"]
    )
