"""Shared CLI plumbing: consoles, logging, progress observer, output and exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
from rich.text import Text

from pacsradar.cli.exitcodes import ExitCode
from pacsradar.models import ScanReport, Severity, TargetResult
from pacsradar.render import iter_jsonl, print_report, to_json

if TYPE_CHECKING:
    from pacsradar.engine import Engine

T = TypeVar("T")

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


def print_error(console: Console, label: str, message: object) -> None:
    """``label: message`` in red on ``console``, the message printed as plain text.

    Error text often quotes what the user typed or imported (a target, a file name, a line of
    an import file): rich markup in it (``[/]``, ``[link=...]``) must neither raise a
    MarkupError nor reach the terminal as styling or an OSC-8 hyperlink.
    """
    # Control characters (terminal escapes) are shown as escapes, surrogates as \udcXX.
    text = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        for ch in str(message)[:2000]
    )
    console.print(Text.assemble((f"{label}:", "bold red"), " ", text), highlight=False, emoji=False)


class _Interrupt:
    """SIGINT handler: the first stops the scan (one line), the second exits at once."""

    def __init__(self, console: Console, engines: Sequence[Engine]) -> None:
        self.console = console
        self.engines = engines
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.count > 1:
            # The user asked twice: no cleanup beyond flushing what was printed.
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(int(ExitCode.INTERRUPTED))
        done = sum(e.done for e in self.engines)
        self.console.print(
            f"stopping: finishing {done} endpoints' records… (Ctrl-C again to quit at once)",
            markup=False,
            highlight=False,
        )
        for engine in self.engines:
            engine.interrupt()


def run_interruptible(
    main: Callable[[], Coroutine[Any, Any, T]], console: Console, engines: Sequence[Engine]
) -> tuple[T, bool]:
    """Run ``main()`` on a new loop with Ctrl-C handling; returns its result and whether the
    user interrupted it.

    Like :func:`asyncio.run`, except that after a Ctrl-C it does not wait for worker threads
    (a blocking share client still inside its own time bound): the loop closes without joining
    them, so the report is written at once.
    """
    loop = asyncio.new_event_loop()
    handler = _Interrupt(console, engines)
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, handler)
    try:
        task = loop.create_task(main())
        try:
            result = loop.run_until_complete(task)
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            if not handler.count:
                loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGINT)
        loop.close()
    return result, handler.count > 0


def exit_interrupted() -> None:
    """After a Ctrl-C, once the report is written: exit 130 now, even if a worker thread (a
    blocking share read, bounded but not cancellable) is still running."""
    if threading.active_count() > 1:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(int(ExitCode.INTERRUPTED))
    raise typer.Exit(ExitCode.INTERRUPTED)


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
