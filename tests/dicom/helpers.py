"""Run the DICOM audit through the library against lab peers (all on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from pacsradar.config import Limits, ScanOptions
from pacsradar.models import Endpoint, Finding, ScanReport, TargetResult
from pacsradar.scan import run_scan

FAST = Limits(connect_timeout=2.0, read_timeout=3.0, target_deadline=30.0)


def dicom_options(ports: Iterable[int], **kw: object) -> ScanOptions:
    return ScanOptions(
        limits=kw.pop("limits", FAST),  # type: ignore[arg-type]
        only=frozenset({"dicom"}),
        dicom_ports=tuple(ports),
        web_ports=(),
        **kw,  # type: ignore[arg-type]
    )


def scan(targets: Iterable[tuple[str, int]], **kw: object) -> ScanReport:
    targets = list(targets)
    options = dicom_options({p for _, p in targets}, **kw)
    endpoints = [Endpoint(host=h, port=p) for h, p in targets]
    return asyncio.run(run_scan(endpoints, options, total=len(endpoints)))


def result_for(report: ScanReport, port: int) -> TargetResult:
    return next(r for r in report.results if r.endpoint.port == port)


def finding(result: TargetResult, check_id: str) -> Finding | None:
    return next((f for f in result.findings if f.check_id == check_id), None)


def attempt_details(result: TargetResult, check: str) -> dict[str, object]:
    return dict(next(a for a in result.attempts if a.check == check).details)


def ids(result: TargetResult) -> set[str]:
    return {f.check_id for f in result.findings}


#: The environment CLI tests run pacsradar in: no colour, wide, no user store or link key.
CLI_ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
CLI_ENV.pop("PACSRADAR_DB", None)
CLI_ENV.pop("PACSRADAR_LINK_KEY", None)


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``python -m pacsradar ARGS`` as a user runs it, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "pacsradar", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or CLI_ENV,
        cwd=cwd,
        check=False,
    )


def debug_scans(
    host: str, port: int, tmp_path: Path, env: dict[str, str]
) -> list[subprocess.CompletedProcess[bytes]]:
    """A debug-level DICOM scan of ``host:port`` by the CLI, three times: JSON to
    ``tmp_path/report.json``, JSONL to stdout, a table to stdout (the canary tests' outputs)."""
    report = tmp_path / "report.json"
    cli = (sys.executable, "-m", "pacsradar", "scan", host, "--ports", str(port))
    return [
        subprocess.run(
            [*cli, "--only", "dicom", "--log-level", "debug", *args],
            capture_output=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        for args in (["-f", "json", "--output", str(report)], ["-f", "jsonl"], ["-f", "table"])
    ]


def leaks(canary: str, runs: Iterable[subprocess.CompletedProcess[bytes]], tmp_path: Path) -> list[str]:
    """Where ``canary`` shows: any stdout or stderr of ``runs``, any file under ``tmp_path``
    (the report, the database, logs)."""
    blobs: dict[str, bytes] = {}
    for i, r in enumerate(runs):
        blobs[f"stdout{i}"] = r.stdout
        blobs[f"stderr{i}"] = r.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
    return [name for name, blob in blobs.items() if canary.encode() in blob]
