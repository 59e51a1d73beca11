"""The store, report and serve commands, driven through typer as a user would."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pacsradar_samples as S
import pytest
import typer
from typer.testing import CliRunner

import pacsradar.monitor
from pacsradar.cli import report as report_cli
from pacsradar.cli import serve as serve_cli
from pacsradar.cli import store as store_cli
from pacsradar.config import ScanOptions
from pacsradar.engine import Observer
from pacsradar.models import ScanReport
from pacsradar.store import Store


@pytest.fixture
def app() -> typer.Typer:
    cli = typer.Typer()

    @cli.callback()
    def _root() -> None:
        """Test root (keeps subcommands as subcommands)."""

    for module in (store_cli, report_cli, serve_cli):
        module.register(cli)
    return cli


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Store(url) as store:
        store.save_report(S.lab_report("scan-a"))
        store.save_report(
            S.report(
                "scan-b",
                [
                    S.result(
                        "127.0.0.1",
                        4242,
                        [S.finding(S.DICOM_PHI, "127.0.0.1", 4242)],
                        started=S.T0 + timedelta(days=1),
                    )
                ],
                started=S.T0 + timedelta(days=1),
            )
        )
    return url


runner = CliRunner()


def test_scans_lists_newest_first(app: typer.Typer, db: str) -> None:
    result = runner.invoke(app, ["scans", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    assert [s["scan_id"] for s in json.loads(result.stdout)] == ["scan-b", "scan-a"]
    table = runner.invoke(app, ["scans", "--db", db])
    assert "scan-b" in table.stdout


def test_diff_defaults_to_last_two_and_fails_on_threshold(app: typer.Typer, db: str) -> None:
    # Given two scans where scan-b dropped findings on 127.0.0.1:4242
    result = runner.invoke(app, ["diff", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["base"], data["head"]) == ("scan-a", "scan-b")
    assert {c["before"]["check_id"] for c in data["resolved"]} == {S.DICOM_ANON, S.TLS}
    # When asked to fail on new critical findings (there are none; PHI changed severity)
    assert runner.invoke(app, ["diff", "scan-b", "scan-a", "--db", db, "--fail-on", "high"]).exit_code == 1
    assert runner.invoke(app, ["diff", "--db", db, "--fail-on", "high"]).exit_code == 0
    assert runner.invoke(app, ["diff", "nope", "--db", db]).exit_code == 3


@pytest.mark.parametrize("fmt", ["html", "sarif", "csv", "json", "md", "defectdojo"])
def test_report_writes_each_format_owner_only(app: typer.Typer, db: str, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"r.{fmt}"
    result = runner.invoke(app, ["report", "scan-a", "--format", fmt, "-o", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 200
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert b"<script>" not in out.read_bytes() or fmt == "csv"


def test_report_to_stdout_and_bad_format(app: typer.Typer, db: str) -> None:
    result = runner.invoke(app, ["report", "--format", "md", "--db", db])
    assert result.stdout.startswith("# pacsradar report: scan scan-b")
    assert runner.invoke(app, ["report", "--format", "docx", "--db", db]).exit_code == 2


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_report_pdf_board_pack(
    app: typer.Typer, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stored scan / When a PDF is asked for
    out = tmp_path / "board.pdf"
    result = runner.invoke(app, ["report", "--format", "pdf", "-o", str(out), "--db", db])
    # Then it is written owner-only, a PDF
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # And without a usable Chromium it is one line and exit 2
    monkeypatch.setenv("PACSRADAR_CHROMIUM", str(tmp_path / "no-chromium"))
    missing = runner.invoke(app, ["report", "--format", "pdf", "-o", str(out), "--db", db])
    assert missing.exit_code == 2
    assert missing.output.strip().count("\n") == 0
    assert "pacsradar[pdf]" in missing.output


def test_risk_add_list_remove(app: typer.Typer, db: str) -> None:
    added = runner.invoke(
        app, ["risk", "add", S.TLS, "127.0.0.2", "--reason", "isolated VLAN", "--expires", "30d", "--db", db]
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["risk", "list", "--db", db])
    assert "isolated VLAN" in listed.stdout
    assert (
        runner.invoke(
            app, ["risk", "add", S.TLS, "*", "--reason", "x", "--expires", "2001-01-01", "--db", db]
        ).exit_code
        == 2
    )
    assert runner.invoke(app, ["risk", "remove", "1", "--db", db]).exit_code == 0
    assert runner.invoke(app, ["risk", "remove", "1", "--db", db]).exit_code == 3


def test_monitor_once_stores_a_scan_and_diffs(
    app: typer.Typer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a scanner stand-in that reports the lab again through the observers
    seen: dict[str, object] = {}

    def fake_scan(
        targets: Sequence[str], options: ScanOptions, observers: Sequence[Observer], **scope: object
    ) -> ScanReport:
        seen.update(scope, options=options)
        report = S.lab_report("monitor-1", started=S.T0 + timedelta(days=2)).model_copy(
            update={"scope": tuple(targets)}
        )
        for obs in observers:
            obs.on_start(report.scan_id, 4)
            for r in report.results:
                obs.on_result(r.model_copy(update={"started_at": report.started_at}))
            obs.on_finish(report)
        return report

    monkeypatch.setattr(pacsradar.monitor, "default_scan", fake_scan)
    # When one monitoring cycle runs, with an exclusion and a gentler rate than scan's default
    result = runner.invoke(
        app, ["monitor", "127.0.0.1/30", "--once", "--db", db, "-x", "127.0.0.2", "--rate", "50"]
    )
    # Then it is stored and diffed against scan-b (same scope)
    assert result.exit_code == 0, result.output
    # And the scan got the exclusion and the limits, exactly as `scan` would
    assert seen["exclude"] == ("127.0.0.2",)
    options = seen["options"]
    assert isinstance(options, ScanOptions) and options.limits.rate == 50
    assert "scan monitor-1:" in result.stderr
    with Store(db) as store:
        assert store.diff().base == "scan-b"
    # And a typo in the scope fails at once with a usage error, before any cycle
    assert runner.invoke(app, ["monitor", "127.0.0.0/33", "--once", "--db", db]).exit_code == 2
    # And the interval is mandatory unless --once
    assert runner.invoke(app, ["monitor", "127.0.0.1", "--db", db]).exit_code == 2
    assert (
        runner.invoke(
            app, ["monitor", "127.0.0.1", "--once", "--webhook", "http://127.0.0.1:9/x", "--db", db]
        ).exit_code
        == 2
    )


def test_serve_refuses_remote_binds(app: typer.Typer, db: str) -> None:
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--db", db])
    assert result.exit_code == 2
    assert "--allow-remote" in result.stderr
