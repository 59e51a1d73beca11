"""Results a user can act on (issue 12 points 7-10), through the CLI against real pynetdicom SCPs
on 127.0.13.0/24: accepted risks, the diff rule, honest messages, a demo that leaves no trace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dicom.helpers import CLI_ENV as ENV
from dicom.helpers import run_cli
from lab.ports import closed_port
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies


def test_accepted_risks_are_marked_and_do_not_fail_the_scan(tmp_path: Path) -> None:
    # Given an exposed PACS scanned once into a store
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with ExposedPacs(make_studies(2, seed=5), host="127.0.13.10") as pacs:
        port = str(pacs.port)
        scan = ["scan", "127.0.13.10", "-p", port, "--only", "dicom", "--db", url]
        first = run_cli(*scan, "-f", "json", cwd=tmp_path)
        found = {f["check_id"] for r in json.loads(first.stdout)["results"] for f in r["findings"]}
        assert {"DICOM-QUERY-PHI", "DICOM-ANY-AE"} <= found, first.stderr[-2000:]
        # When every finding is accepted as a risk on that host
        for check_id in sorted(found):
            risk = ["risk", "add", check_id, "127.0.13.10", "--reason", "lab", "--expires", "30d"]
            added = run_cli(*risk, "--db", url, cwd=tmp_path)
            assert added.returncode == 0, added.stderr
        # Then a scan with --fail-on medium passes, and marks each finding as accepted
        again = run_cli(*scan, "--fail-on", "medium", cwd=tmp_path)
        counted = run_cli(*scan, "--fail-on", "medium", "--count-accepted", cwd=tmp_path)
        as_json = run_cli(*scan, "-f", "json", cwd=tmp_path)
        as_jsonl = run_cli(*scan, "-f", "jsonl", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]
    lines = [line for line in again.stdout.splitlines() if line.startswith("finding\t")]
    assert lines and all("accepted risk until" in line for line in lines)
    assert f"({len(lines)} accepted)" in again.stdout
    # And --count-accepted lets them count again
    assert counted.returncode == 1
    # And the JSON document and the JSON lines mark them too
    doc = json.loads(as_json.stdout)
    assert len(doc["accepted_risks"]) == sum(len(r["findings"]) for r in doc["results"])
    rows = [json.loads(x) for x in as_jsonl.stdout.splitlines()]
    assert all("accepted_until" in r for r in rows if "check_id" in r)
    # And an unknown check id (the old help example) is refused, naming the real ones
    risk = ["risk", "add", "DICOM-NO-TLS", "*", "--reason", "x", "--expires", "30d"]
    typo = run_cli(*risk, "--db", url, cwd=tmp_path)
    assert typo.returncode == 2 and "unknown check id" in typo.stderr and "DICOM-PLAINTEXT" in typo.stderr


def test_diff_follows_the_readme_rule_stop_rescan_restart_rescan(tmp_path: Path) -> None:
    # Given a PACS on a fixed port, scanned into a store
    url = f"sqlite:///{tmp_path / 'd.db'}"
    datasets = make_studies(2, seed=6)
    with ExposedPacs(datasets, host="127.0.13.20") as pacs:
        port = pacs.port
        scan = ["scan", "127.0.13.20", "-p", str(port), "--only", "dicom", "--db", url, "-f", "json"]
        baseline = run_cli(*scan, cwd=tmp_path)
    assert baseline.returncode == 0, baseline.stderr[-2000:]
    n = sum(len(r["findings"]) for r in json.loads(baseline.stdout)["results"])
    assert n > 0
    # When the SCP is stopped (connection refused; its port held, so it stays the SCP's) and the
    # scope rescanned
    with closed_port("127.0.13.20", port):
        stopped = run_cli(*scan, cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    after_stop = json.loads(run_cli("diff", "--json", "--db", url, cwd=tmp_path).stdout)
    # Then every finding is resolved (README: a refused connection resolves), none "not re-tested"
    assert (len(after_stop["resolved"]), len(after_stop["not_retested"])) == (n, 0)
    # When it is restarted and rescanned, Then the same findings are back as regressions
    with ExposedPacs(datasets, host="127.0.13.20", port=port):
        restarted = run_cli(*scan, cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    after_restart = json.loads(run_cli("diff", "--json", "--db", url, cwd=tmp_path).stdout)
    assert (len(after_restart["regressed"]), len(after_restart["new"])) == (n, 0)
    # And the open findings are the baseline's again
    findings = run_cli("diff", "--db", url, cwd=tmp_path)
    assert f"{n} regressed" in findings.stdout


def test_monitor_says_what_happened_to_the_alert(tmp_path: Path, closed_ports: Callable[..., int]) -> None:
    # Given an exposed PACS watched by a monitor, first without any alert sink
    url = f"sqlite:///{tmp_path / 'm.db'}"
    with ExposedPacs(make_studies(2, seed=8), host="127.0.13.30") as pacs:
        base = ["monitor", "127.0.13.30", "-p", str(pacs.port), "--only", "dicom", "--once"]
        quiet = run_cli(*base, "--db", url, cwd=tmp_path)
        # And then with a webhook nothing listens for
        env = {**ENV, "PACSRADAR_WEBHOOK_SECRET": "s" * 32}
        hook = f"http://127.0.13.31:{closed_ports('127.0.13.31')}/hook"
        other = f"sqlite:///{tmp_path / 'm2.db'}"
        failed = run_cli(*base, "--webhook", hook, "--db", other, cwd=tmp_path, env=env)
    # Then the first says no sink is configured, never "sent"
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "no alert sink configured" in quiet.stderr and "sent" not in quiet.stderr
    # And the second reports the webhook as failed, with the reason, and exits 3
    assert failed.returncode == 3, failed.stderr[-2000:]
    assert "webhook failed:" in failed.stderr and "alert sent" not in failed.stderr


def test_one_endpoint_is_singular(tmp_path: Path, closed_ports: Callable[..., int]) -> None:
    closed = str(closed_ports("127.0.13.31"))
    result = run_cli("scan", "127.0.13.31", "-p", closed, "--no-store", cwd=tmp_path)
    assert "# 1 endpoint probed: 0 open, 1 closed, 0 filtered; 0 findings" in result.stdout


def test_demo_uses_a_throwaway_store_and_says_where(tmp_path: Path) -> None:
    # Given a user whose default store lives under XDG_DATA_HOME
    data_home = tmp_path / "xdg"
    env = {**ENV, "XDG_DATA_HOME": str(data_home), "HOME": str(tmp_path)}
    # When the demo runs
    demo = run_cli("demo", "--patients", "3", cwd=tmp_path, env=env)
    # Then it found the exposure, wrote no default store, and says where its own store is
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "DICOM-QUERY-PHI" in demo.stdout
    assert not (data_home / "pacsradar").exists()
    line = next(x for x in demo.stderr.splitlines() if x.startswith("demo store"))
    db = line.split(": ", 1)[1].strip()
    assert db.startswith("sqlite:///") and "pacsradar-demo-" in db
    # And that store opens with the commands it names
    scans = run_cli("scans", "--db", db, cwd=tmp_path, env=env)
    assert scans.returncode == 0 and "127.0.0.1" in scans.stdout


def test_plain_http_server_without_phi_is_not_web_plaintext(tmp_path: Path) -> None:
    # Given `python -m http.server` (no PHI, no login, no DICOMweb) on a port scanned as DICOM
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("<html><title>hello</title></html>", encoding="utf-8")
    # Port 0: http.server binds, then prints "Serving HTTP on HOST port PORT ..." (-u: at once)
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.13.40", "0"],
        cwd=tmp_path / "www",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner.startswith("Serving HTTP on 127.0.13.40 port "), banner
        port = int(banner.split()[5])
        # When it is scanned with every family on that port
        result = run_cli("scan", "127.0.13.40", "-p", str(port), "--no-store", "-f", "json", cwd=tmp_path)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    # Then it is seen as HTTP, and WEB-PLAINTEXT is not raised for it
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    (only,) = report["results"]
    assert only["service"] == "http"
    assert all(f["check_id"] != "WEB-PLAINTEXT" for f in only["findings"])
    assert all(f["severity"] == "info" for f in only["findings"])
