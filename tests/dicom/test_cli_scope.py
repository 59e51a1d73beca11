"""The CLI a hospital can trust (issue 12): scope never widens, "could not test" never reads as
clean, nmap's conventions. Run as a user runs it: subprocesses against real servers on
127.0.12.0/24 (pynetdicom SCPs, silent TCP peers, counting traps). No DNS: names end in
``.invalid`` (RFC 6761, answered by pacsradar without a query).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicom.helpers import CLI_ENV as ENV
from dicom.helpers import run_cli
from lab.hostile import Silent, ThreadedServer, run_in_thread
from lab.ports import one_port
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies


@contextlib.contextmanager
def traps(*where: tuple[str, int]) -> Iterator[list[ThreadedServer]]:
    """Silent listeners that count connections: each must stay at zero."""
    servers: list[ThreadedServer] = []
    try:
        for host, port in where:
            try:
                servers.append(run_in_thread(Silent(host, port)))
            except OSError:
                continue  # port taken by something else on this machine: that trap is skipped
        yield servers
    finally:
        for s in servers:
            s.stop()


def _wait_for_stored_result(db: Path, timeout: float = 90.0) -> str:
    """Poll the store until the running scan has committed one endpoint; return its id."""
    from pacsradar.store import Store

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if db.exists():
            with contextlib.suppress(Exception), Store(f"sqlite:///{db}", migrate=False) as store:
                for summary in store.list_scans():
                    if store.load_report(summary.scan_id).results:
                        return summary.scan_id
        time.sleep(0.2)
    raise AssertionError("the first run never stored a result")


# -- 1. --resume never widens the scope ----------------------------------------------------------


def test_resume_restores_the_stored_plan_and_never_widens_it(tmp_path: Path) -> None:
    # Given the scan: three hosts, one excluded, one port, DICOM only, and long timeouts;
    # the first host answers at once, the second accepts TCP and stays silent (the run hangs there)
    db = tmp_path / "k.db"
    defaults = [("127.0.12.10", 104), ("127.0.12.10", 8042), ("127.0.12.100", 4242), ("127.0.12.100", 445)]
    with (
        one_port(
            lambda p: ExposedPacs(make_studies(2, seed=3), host="127.0.12.10", port=p),
            lambda p: run_in_thread(Silent("127.0.12.100", p)),
        ) as (port, (_, hang)),
        traps(("127.0.12.50", port), *defaults) as watched,
    ):
        args = ["scan", "127.0.12.100", "127.0.12.50", "127.0.12.10", "-x", "127.0.12.50", "-p", str(port)]
        args += ["--only", "dicom", "--assoc-timeout", "60", "--read-timeout", "60", "--deadline", "120"]
        args += ["--max-records", "77", "--rate", "25", "--db", f"sqlite:///{db}", "-f", "json"]
        first = subprocess.Popen(
            [sys.executable, "-m", "pacsradar", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            cwd=tmp_path,
        )
        try:
            scan_id = _wait_for_stored_result(db)
        finally:
            # When it is killed with SIGKILL part-way, the silent host goes away (now refused) ...
            first.kill()
            first.communicate(timeout=30)
            hang.stop()
        # ... and the scan is resumed with nothing but its id
        resumed = run_cli("scan", "--resume", scan_id, "--db", f"sqlite:///{db}", "-f", "json", cwd=tmp_path)
        # Then the resume finished only the unfinished endpoint, under the same id
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        report = json.loads(resumed.stdout)
        assert report["scan_id"] == scan_id
        assert report["stats"]["endpoints_done"] == 1
        # And neither run touched the excluded host, a default port or a non-DICOM family
        assert [t.server.connections for t in watched] == [0] * len(watched)
        assert watched and watched[0].host == "127.0.12.50"
    # And the stored plan kept every option of the first run: exclusion, port, family, limits
    from pacsradar.session import ScanSession
    from pacsradar.store import Store

    with Store(f"sqlite:///{db}") as store:
        session = ScanSession.resume(store, scan_id)
    plan = session.plan
    assert plan.exclusions == ("127.0.12.50",)
    assert plan.ports() == (port,)
    assert plan.families == ("dicom",)
    limits = session.options.limits
    assert (limits.assoc_timeout, limits.read_timeout) == (60, 60)
    assert (limits.target_deadline, limits.rate) == (120, 25)
    assert session.options.max_records == 77


def test_resume_refuses_what_it_cannot_restore(tmp_path: Path) -> None:
    # Given a store with a scan saved without a plan (an older pacsradar, or an import)
    from datetime import UTC, datetime

    from pacsradar.models import ScanReport
    from pacsradar.store import Store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Store(url) as store:
        store.save_report(ScanReport(scan_id="old-1", version="0.0.1", started_at=datetime.now(UTC)))
    # When it is resumed, Then exit 2 with a clear reason, and nothing is scanned
    old = run_cli("scan", "--resume", "old-1", "--db", url, cwd=tmp_path)
    assert old.returncode == 2
    assert "without its scan plan" in old.stderr and "Traceback" not in old.stderr
    # And a resume that also names targets or scope options is refused, naming them
    mixed = run_cli("scan", "--resume", "old-1", "127.0.12.1", "-p", "104", "--db", url, cwd=tmp_path)
    assert mixed.returncode == 2
    assert "--ports" in mixed.stderr and "--targets" in mixed.stderr
    # And an unknown id is a usage error too
    assert run_cli("scan", "--resume", "nope", "--db", url, cwd=tmp_path).returncode == 2


# -- 2. -p exact, -iL, one -o convention ---------------------------------------------------------


def test_ports_are_exact_and_plus_adds_to_the_defaults(
    tmp_path: Path, closed_ports: Callable[..., int]
) -> None:
    # Given a DICOM default port with a counting listener, and a closed port P
    closed = closed_ports("127.0.12.30")
    with traps(("127.0.12.30", 104), ("127.0.12.30", 8042)) as watched:
        # When -p names P only
        exact = run_cli("scan", "127.0.12.30", "-p", str(closed), "--no-store", "-f", "json", cwd=tmp_path)
        # Then exactly one endpoint is probed and the defaults are never touched
        assert exact.returncode == 0, exact.stderr[-2000:]
        assert json.loads(exact.stdout)["stats"]["endpoints_done"] == 1
        assert [t.server.connections for t in watched] == [0] * len(watched)
    # And -p +P (or --extra-ports P) adds P to the seven default DICOM ports
    for spelling in (["-p", f"+{closed}"], ["--extra-ports", str(closed)]):
        plus = run_cli(
            "scan", "127.0.12.31", *spelling, "--only", "dicom", "--no-store", "-f", "json", cwd=tmp_path
        )
        assert plus.returncode == 0, plus.stderr[-2000:]
        assert json.loads(plus.stdout)["stats"]["endpoints_done"] == 8


def test_input_list_and_output_file_conventions(tmp_path: Path, closed_ports: Callable[..., int]) -> None:
    # Given a target list for -iL and a closed port
    closed = str(closed_ports("127.0.12.32"))
    listing = tmp_path / "hosts.txt"
    listing.write_text("127.0.12.32  # ward A\n127.0.12.33\n", encoding="utf-8")
    common = ["-iL", str(listing), "-p", closed, "--no-store"]
    # When the report goes to a .txt file, Then it is the plain table, not JSON
    txt = run_cli("scan", *common, "-o", str(tmp_path / "r.txt"), cwd=tmp_path)
    assert txt.returncode == 0, txt.stderr[-2000:]
    text = (tmp_path / "r.txt").read_text(encoding="utf-8")
    assert text.startswith("# pacsradar scan ") and "2 endpoints probed" in text
    # And a .json file is JSON, covering both listed hosts
    js = run_cli("scan", *common, "--output", str(tmp_path / "r.json"), cwd=tmp_path)
    assert json.loads((tmp_path / "r.json").read_text())["stats"]["endpoints_done"] == 2, js.stderr
    # And an ending that names no format is an error before any work
    odd = run_cli("scan", *common, "-o", str(tmp_path / "r.xyz"), cwd=tmp_path)
    assert odd.returncode == 2 and "-f" in odd.stderr and not (tmp_path / "r.xyz").exists()
    # And .html names the HTML report (issue 25: every ending that names a format)
    html = run_cli("scan", *common, "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert html.returncode == 0 and (tmp_path / "r.html").read_text().lstrip().lower().startswith("<!doctype")
    forced = run_cli("scan", *common, "-f", "table", "-o", str(tmp_path / "t.json"), cwd=tmp_path)
    assert forced.returncode == 0 and (tmp_path / "t.json").read_text().startswith("# pacsradar scan")
    # And the old `-o json` still means the format, with a warning
    old = run_cli("scan", *common, "-o", "json", cwd=tmp_path)
    assert old.returncode == 0 and json.loads(old.stdout)["stats"]["endpoints_done"] == 2
    assert "-o now names the output file" in old.stderr


# -- 3. could not test never reads as clean --------------------------------------------------------


def test_silent_peer_is_could_not_test_and_exits_4_with_fail_on(
    tmp_path: Path, closed_ports: Callable[..., int]
) -> None:
    # Given a peer that accepts TCP and never answers, and a closed port beside it
    closed = closed_ports("127.0.12.41")
    with run_in_thread(Silent("127.0.12.40", 0)) as silent:
        port = str(silent.port)
        args = ["127.0.12.40", "127.0.12.41", "-p", f"{port},{closed}", "--only", "dicom", "--no-store"]
        args += ["--assoc-timeout", "1", "--fail-on", "info"]
        # When scanned with --fail-on, output piped
        strict = run_cli("scan", *args, cwd=tmp_path)
        lenient = run_cli("scan", *args, "--allow-incomplete", cwd=tmp_path)
    # Then the exit code is 4 (not 0), unless incomplete results are allowed
    assert strict.returncode == 4, strict.stderr[-2000:]
    assert lenient.returncode == 0, lenient.stderr[-2000:]
    # And the output says what could not be tested, and why; the closed port is not "answered"
    lines = strict.stdout.splitlines()
    untested = [line.split("\t") for line in lines if line.startswith("could-not-test\t")]
    assert [u[1] for u in untested] == [f"127.0.12.40:{port}"]
    assert untested[0][2]
    summary = lines[-1]
    assert "4 endpoints probed: 1 open, 3 closed, 0 filtered" in summary
    assert "1 could not be tested" in summary and "0 findings" in summary


def test_unresolvable_names_are_errors_or_warnings(tmp_path: Path, closed_ports: Callable[..., int]) -> None:
    # Given a name that cannot resolve (RFC 6761 .invalid: pacsradar answers without DNS)
    alone = run_cli("scan", "no-such-host.invalid", "--no-store", "--fail-on", "info", cwd=tmp_path)
    # Then alone it is a one-line usage error (exit 2), no "closed" endpoints
    assert alone.returncode == 2
    assert "no-such-host.invalid" in alone.stderr and "did not resolve" in alone.stderr
    assert "Traceback" not in alone.stderr and "closed" not in alone.stdout
    # And beside a real target it is a warning, and --fail-on exits 4 (incomplete), never 0
    closed = str(closed_ports("127.0.12.42"))
    args = ["no-such-host.invalid", "127.0.12.42", "-p", closed, "--no-store", "--fail-on", "info"]
    mixed = run_cli("scan", *args, cwd=tmp_path)
    assert mixed.returncode == 4, mixed.stderr[-2000:]
    assert "# warning: no-such-host.invalid: name did not resolve" in mixed.stdout


def test_unparseable_import_names_file_and_format(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("this-is-not-xml\n", encoding="utf-8")
    result = run_cli("scan", "--import", str(bad), "--no-store", cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.xml" in result.stderr and "nmap XML" in result.stderr


# -- 5. errors before work -------------------------------------------------------------------------


def test_errors_come_before_any_work(tmp_path: Path) -> None:
    # Given an unwritable output path and a counting listener as the target
    with traps(("127.0.12.43", 11112)) as watched:
        nodir = run_cli(
            "scan", "127.0.12.43", "-p", "11112", "--no-store", "-o", "/nonexistent/dir/r.json", cwd=tmp_path
        )
        # Then exit 2 in one line, and the target was never contacted
        assert nodir.returncode == 2
        assert "/nonexistent/dir" in nodir.stderr and len(nodir.stderr.strip().splitlines()) <= 2
        assert "Traceback" not in nodir.stderr
        assert all(t.server.connections == 0 for t in watched)
    # And a negative rate or timeout is refused
    for bad in (["--rate", "-5"], ["--connect-timeout", "0"], ["--deadline", "-1"]):
        refused = run_cli("scan", "127.0.12.43", *bad, "--no-store", cwd=tmp_path)
        assert refused.returncode == 2, (bad, refused.stderr)
    # And read-only commands never create a store (a mistyped --db is an error)
    typo = tmp_path / "typo" / "dir" / "x.db"
    for command in (["report"], ["scans"], ["diff"], ["report", "some-scan"]):
        result = run_cli(*command, "--db", f"sqlite:///{typo}", cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "no findings store" in result.stderr
    assert not (tmp_path / "typo").exists()
    # And `report nosuchscan` on a real store is a usage error naming the id
    from datetime import UTC, datetime

    from pacsradar.models import ScanReport
    from pacsradar.store import Store

    url = f"sqlite:///{tmp_path / 'real.db'}"
    with Store(url) as store:
        store.save_report(ScanReport(scan_id="real-1", version="0", started_at=datetime.now(UTC)))
    missing = run_cli("report", "nosuchscan", "--db", url, cwd=tmp_path)
    assert missing.returncode == 2 and "nosuchscan" in missing.stderr


@pytest.mark.parametrize("columns", ["80", "200"])
def test_piped_output_is_one_finding_per_line_with_full_ids(tmp_path: Path, columns: str) -> None:
    # Given an exposed PACS, scanned and stored, output piped at 80 or 200 columns
    env = {**ENV, "COLUMNS": columns}
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with ExposedPacs(make_studies(2, seed=4), host="127.0.12.44") as pacs:
        port = pacs.port
        args = ["127.0.12.44", "-p", str(port), "--only", "dicom", "--db", url]
        result = run_cli("scan", *args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    # Then every finding is one tab-separated line with its endpoint, severity, id and summary
    findings = [line.split("\t") for line in result.stdout.splitlines() if line.startswith("finding\t")]
    assert findings and all(len(f) >= 6 and f[1] == f"127.0.12.44:{port}" for f in findings)
    query = next(f for f in findings if f[3] == "DICOM-QUERY-PHI")
    assert query[2] == "critical" and len(query[5]) > 40  # the summary in full, not 7-char slices
    # And `scans | cat` shows the full scan id, ready to paste into report, diff or --resume
    scan_id = result.stdout.splitlines()[0].removeprefix("# pacsradar scan ")
    listed = run_cli("scans", "--db", url, cwd=tmp_path, env=env)
    assert scan_id in listed.stdout.split()
    assert run_cli("report", scan_id, "-f", "json", "--db", url, cwd=tmp_path, env=env).returncode == 0


def test_missing_database_driver_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    # Given a PostgreSQL URL whose driver is not installed (pg8000; nothing is contacted:
    # the driver is imported before any connection)
    url = "postgresql+pg8000://pacs@127.0.0.1:9/none"
    for command in (["scans"], ["scan", "127.0.12.60", "-p", "9"]):
        result = run_cli(*command, "--db", url, cwd=tmp_path)
        # Then the command fails in one line that names the extra to install, no traceback
        assert result.returncode == 2, (command, result.stderr)
        assert "pacsradar[postgres]" in result.stderr and "Traceback" not in result.stderr
