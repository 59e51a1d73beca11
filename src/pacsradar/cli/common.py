"""Shared CLI plumbing: consoles, logging, progress observer, output and exit codes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from pacsradar.cli.exitcodes import ExitCode
from pacsradar.models import ScanReport, Severity, TargetResult
from pacsradar.render import iter_jsonl, print_report, to_json

OUTPUT_FORMATS = ("table", "json", "jsonl")

# Options shared by several commands, declared once (typer reads them, never mutates them).
OPT_FORMAT = typer.Option("table", "--format", "-o", help="table, json or jsonl.")
OPT_OUTPUT = typer.Option(None, "--output", help="Write the report to this file.")
OPT_FAIL_ON = typer.Option(None, "--fail-on", help="Exit 1 if a finding is at least this severe.")
OPT_LINK_KEY = typer.Option(
    None,
    "--link-key",
    envvar="PACSRADAR_LINK_KEY",
    help="Key for patient hashes that link across runs (else random per run).",
)
OPT_LOG_LEVEL = typer.Option("warning", "--log-level", help="Log level for pacsradar's own logger.")
OPT_NO_PROGRESS = typer.Option(False, "--no-progress", help="No progress bar.")


def stderr_console() -> Console:
    return Console(stderr=True)


def setup_logging(level: str) -> None:
    """Our logger at the requested level; third-party loggers stay at WARNING.

    pydicom/pynetdicom debug output can print element values; keeping them quiet is part of the
    'no PHI in logs' rule, at every level the user can choose.
    """
    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        raise typer.BadParameter(f"unknown log level {level[:20]!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("pacsradar").setLevel(numeric)
    for noisy in ("pydicom", "pynetdicom", "httpx", "httpcore", "asyncio", "smbprotocol", "spnego"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ProgressObserver:
    """A rich progress bar on stderr; the engine never prints, this observer does."""

    def __init__(self, console: Console, label: str = "probing") -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[found]} open"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.label = label
        self.task: TaskID | None = None
        self.open = 0

    def on_start(self, scan_id: str, total: int | None) -> None:
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=total, found=0)

    def on_result(self, result: TargetResult) -> None:
        if result.reachable:
            self.open += 1
        if self.task is not None:
            self.progress.update(self.task, advance=1, found=self.open)

    def on_finish(self, report: ScanReport) -> None:
        self.progress.stop()


def emit(report: ScanReport, fmt: str, output: Path | None, console: Console) -> None:
    if fmt not in OUTPUT_FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "table":
        print_report(report, console)
        text = None
    elif fmt == "json":
        text = to_json(report)
    else:
        text = "\n".join(iter_jsonl(report))
    if output is not None:
        # The file gets machine-readable JSON even when the terminal shows a table.
        output.write_text((text if text is not None else to_json(report)) + "\n", encoding="utf-8")
    elif text is not None:
        sys.stdout.write(text + "\n")


def exit_code(report: ScanReport, fail_on: Severity | None) -> ExitCode:
    if report.stats.interrupted:
        return ExitCode.INTERRUPTED
    worst = report.worst_severity()
    if fail_on is not None and worst is not None and worst.rank >= fail_on.rank:
        return ExitCode.FINDINGS
    return ExitCode.OK
