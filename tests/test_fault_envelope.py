"""One error envelope for every unit of work (issue 11, point 1).

A fault is injected into a real check (it does its real network work, then raises KeyError with
a canary in its message) during a real scan of a real peer: the check becomes an error attempt
``internal error: KeyError`` (the message, which could quote a peer, is never kept), the
endpoint's other checks still run, the scan finishes and the exit code follows the findings.
The same for an auditor's discovery and for observers. All traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from typer.testing import CliRunner

import pacsradar.files.remote
import pacsradar.registry
import pacsradar.tls.audit
import pacsradar.web.auditor
from lab import CANARY
from lab.dcmtk import DcmtkPeer
from pacsradar.checks import Check
from pacsradar.cli import _register
from pacsradar.cli import app as cli_app
from pacsradar.config import Limits, ScanOptions
from pacsradar.engine import Engine
from pacsradar.lab.pacs import ExposedPacs
from pacsradar.lab.synthetic import make_studies
from pacsradar.models import Attempt, AttemptStatus, Endpoint, ScanReport, TargetResult
from pacsradar.scan import default_auditors, run_scan
from web.servers import run_app

_register()
LIMITS = Limits(connect_timeout=2.0, read_timeout=3.0, target_deadline=30.0)
FAULT = f"PatientName={CANARY}"  # what a careless exception message could carry


def _faulty(real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)  # the real check's network work, then the bug
        raise KeyError(FAULT)

    return run


def _inject(monkeypatch: pytest.MonkeyPatch, loader: str, check_name: str) -> None:
    """Replace one real check of a registry family by itself plus a KeyError at the end."""
    real_loader = getattr(pacsradar.registry, loader)
    checks = real_loader()
    assert any(c.name == check_name for c in checks), check_name
    patched = tuple(dataclasses.replace(c, run=_faulty(c.run)) if c.name == check_name else c for c in checks)
    monkeypatch.setattr(pacsradar.registry, loader, lambda: patched)


def _attempt(result: TargetResult, check: str) -> Attempt:
    return next(a for a in result.attempts if a.check == check)


def _no_canary(report: ScanReport) -> None:
    assert CANARY not in report.model_dump_json()


@pytest.fixture
def pacs() -> Iterator[ExposedPacs]:
    with ExposedPacs(make_studies(3, seed=11, canary=CANARY), host="127.0.0.111") as server:
        yield server


def _dicom_scan(*ports: int, host: str = "127.0.0.111", **kw: Any) -> ScanReport:
    options = ScanOptions(limits=LIMITS, only=frozenset({"dicom"}), dicom_ports=ports, web_ports=(), **kw)
    endpoints = [Endpoint(host=host, port=p) for p in ports]
    return asyncio.run(run_scan(endpoints, options, total=len(endpoints)))


def test_a_faulty_dicom_check_is_one_error_attempt_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch, pacs: ExposedPacs
) -> None:
    # Given an exposed pynetdicom PACS and a C-ECHO check that raises KeyError after its echo
    _inject(monkeypatch, "dicom_checks", "dicom.echo")
    # When the default DICOM audit scans it
    report = _dicom_scan(pacs.port)
    # Then the echo is an error attempt naming only the exception type
    (result,) = report.results
    echo = _attempt(result, "dicom.echo")
    assert echo.status is AttemptStatus.ERROR
    assert echo.reason == "internal error: KeyError"
    # And the checks after it still ran and found the exposure
    assert _attempt(result, "dicom.query").status is AttemptStatus.COMPLETED
    assert "DICOM-QUERY-PHI" in {f.check_id for f in result.findings}
    assert not report.stats.interrupted
    _no_canary(report)


def test_a_faulty_dicom_check_still_gives_a_report_and_the_findings_exit_code(
    monkeypatch: pytest.MonkeyPatch, pacs: ExposedPacs, tmp_path: Path
) -> None:
    # Given the same fault, When the CLI scans with --fail-on high and a JSON report file
    _inject(monkeypatch, "dicom_checks", "dicom.echo")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli_app,
        ["scan", "127.0.0.111", "-p", str(pacs.port), "--no-default-ports", "--only", "dicom",
         "--no-store", "--no-progress", "--fail-on", "high", "--output", str(out)],
    )  # fmt: skip
    # Then the report is written, the exit code is the findings' one (1), no traceback
    assert result.exit_code == 1, result.output[-2000:]
    report = json.loads(out.read_text())
    attempts = {a["check"]: a for r in report["results"] for a in r["attempts"]}
    assert attempts["dicom.echo"]["reason"] == "internal error: KeyError"
    assert "Traceback" not in result.output
    assert CANARY not in out.read_text() + result.output


def _site(listing: bool) -> web.Application:
    body = (
        "<html><head><title>Index of /</title></head><body><h1>Index of /</h1>"
        '<a href="notes.txt">notes.txt</a></body></html>'
        if listing
        else "<html><head><title>Portal</title></head><body>hello</body></html>"
    )

    async def root(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    async def notes(request: web.Request) -> web.Response:
        return web.Response(text="not DICOM")

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/notes.txt", notes)
    return app


async def _web_scan(port: int, *only: str) -> ScanReport:
    options = ScanOptions(limits=LIMITS, only=frozenset(only), dicom_ports=(), web_ports=(port,))
    engine = Engine(options, default_auditors(options))
    return await engine.run([Endpoint(host="127.0.0.1", port=port)], total=1)


async def test_a_faulty_web_check_is_one_error_attempt_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a real HTTP server and a CORS check that raises KeyError after its requests
    _inject(monkeypatch, "web_checks", "web.cors")
    async with run_app(_site(listing=False)) as port:
        # When the web audit scans it
        report = await _web_scan(port, "web")
    # Then CORS is an error attempt and the web checks after it completed
    (result,) = report.results
    assert _attempt(result, "web.cors").reason == "internal error: KeyError"
    assert _attempt(result, "web.cors").status is AttemptStatus.ERROR
    assert _attempt(result, "web.plaintext").status is AttemptStatus.COMPLETED
    _no_canary(report)


async def test_a_faulty_web_discovery_costs_only_the_web_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a real HTTP server and a web discovery that raises KeyError
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError(FAULT)

    monkeypatch.setattr(pacsradar.web.auditor.WebAuditor, "_discover", broken)
    async with run_app(_site(listing=False)) as port:
        report = await _web_scan(port, "web")
    # Then the endpoint is kept with one error attempt for the web auditor
    (result,) = report.results
    assert result.reachable
    assert _attempt(result, "web.audit").reason == "internal error: KeyError"
    _no_canary(report)


async def test_a_faulty_share_audit_costs_only_the_share_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a real HTTP server with an open listing, and a share audit that raises after its walk
    real = pacsradar.files.remote.audit_http

    def faulty(*args: Any, **kwargs: Any) -> TargetResult:
        real(*args, **kwargs)
        raise KeyError(FAULT)

    monkeypatch.setattr(pacsradar.files.remote, "audit_http", faulty)
    async with run_app(_site(listing=True)) as port:
        # When web and share audits scan it
        report = await _web_scan(port, "web", "share")
    # Then the share part is one error attempt and the web part is complete
    (result,) = report.results
    assert _attempt(result, "share.audit").reason == "internal error: KeyError"
    assert _attempt(result, "web.plaintext").status is AttemptStatus.COMPLETED
    _no_canary(report)


def test_a_faulty_tls_check_is_one_error_attempt_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch, storescp_tls: DcmtkPeer
) -> None:
    # Given storescp with DICOM TLS and a TLS audit that raises KeyError after its handshakes
    monkeypatch.setattr(pacsradar.tls.audit, "run_tls_audit", _faulty(pacsradar.tls.audit.run_tls_audit))
    # When the default DICOM audit scans it
    report = _dicom_scan(storescp_tls.port, host=storescp_tls.host)
    # Then the TLS check is an error attempt and the DICOM checks before it completed
    (result,) = report.results
    assert result.service == "dicom-tls"
    tls = _attempt(result, "dicom.tls")
    assert tls.status is AttemptStatus.ERROR
    assert tls.reason == "internal error: KeyError"
    assert _attempt(result, "dicom.service").status is AttemptStatus.COMPLETED
    _no_canary(report)


class _Recorder:
    def __init__(self) -> None:
        self.results: list[TargetResult] = []
        self.finished = False

    def on_start(self, scan_id: str, total: int | None) -> None:
        return None

    def on_result(self, result: TargetResult) -> None:
        self.results.append(result)

    def on_finish(self, report: ScanReport) -> None:
        self.finished = True


class _Broken(_Recorder):
    def on_result(self, result: TargetResult) -> None:
        raise KeyError(FAULT)


def test_a_failing_observer_is_dropped_visibly_and_the_others_get_everything(
    pacs: ExposedPacs, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a broken observer before a working one
    broken, recorder = _Broken(), _Recorder()
    options = ScanOptions(limits=LIMITS, only=frozenset({"dicom"}), dicom_ports=(pacs.port, 1), web_ports=())
    engine = Engine(options, default_auditors(options), [broken, recorder], keep_closed=True)
    endpoints = [Endpoint(host="127.0.0.111", port=p) for p in (pacs.port, 1)]
    # When a scan of two endpoints runs
    report = asyncio.run(engine.run(endpoints, total=2))
    # Then the working observer got both results and the finish
    assert len(recorder.results) == 2 and recorder.finished
    assert len(report.results) == 2
    # And the broken one is named, with the exception type only, in the engine and the log
    assert engine.failed_observers == ["_Broken.on_result (KeyError)"]
    assert "_Broken" in caplog.text
    assert CANARY not in caplog.text


def test_the_cli_says_when_the_store_failed_and_still_writes_the_report(
    monkeypatch: pytest.MonkeyPatch, pacs: ExposedPacs, tmp_path: Path
) -> None:
    # Given a store whose writes fail part-way through the scan
    from pacsradar.errors import StoreError
    from pacsradar.store import Store

    def fail(self: Store, *args: Any, **kwargs: Any) -> None:
        raise StoreError("store operation failed (OperationalError)")

    monkeypatch.setattr(Store, "record_result", fail)
    monkeypatch.setattr(Store, "record_results", fail)  # the batch path a scan writes through
    out = tmp_path / "report.json"
    # When the CLI scans with a store
    result = CliRunner().invoke(
        cli_app,
        ["scan", "127.0.0.111", "-p", str(pacs.port), "--no-default-ports", "--only", "dicom",
         "--db", f"sqlite:///{tmp_path / 'f.db'}", "--no-progress", "-f", "json",
         "--output", str(out)],
    )  # fmt: skip
    # Then the report is complete, the failure is printed, and the exit code says so (3)
    assert result.exit_code == 3, result.output[-2000:]
    assert json.loads(out.read_text())["stats"]["endpoints_done"] == 1
    # (results are written in batches: a one-endpoint scan's batch goes when the scan finishes)
    assert re.search(r"StoreObserver\.on_(result|finish) \(StoreError\)", result.output)
    assert "Traceback" not in result.output


def test_every_registered_check_is_a_check() -> None:
    # The fault injection above relies on the registry handing out Check objects.
    for check in (*pacsradar.registry.dicom_checks(), *pacsradar.registry.web_checks()):
        assert isinstance(check, Check)


async def test_a_resolver_that_raises_costs_only_that_name(pacs: ExposedPacs) -> None:
    # Given two names: one whose resolution raises KeyError, one that resolves to the PACS
    from pacsradar.session import ScanPlan, ScanSession

    async def resolver(name: str) -> list[str]:
        if name == "broken.lab":
            raise KeyError(FAULT)
        return ["127.0.0.111"]

    options = ScanOptions(
        limits=LIMITS, only=frozenset({"dicom"}), dicom_ports=(pacs.port,), web_ports=(), share_ports=()
    )
    plan = ScanPlan.build(targets=["broken.lab", "pacs.lab"], options=options)
    session = ScanSession(plan, resolver=resolver)
    # When the session runs
    report = await session.run_async()
    # Then the broken name is a warning, and the other one is fully audited
    assert session.unresolved == ["broken.lab"]
    assert "DICOM-QUERY-PHI" in {f.check_id for r in report.results for f in r.findings}
    assert CANARY not in " ".join(session.warnings)
