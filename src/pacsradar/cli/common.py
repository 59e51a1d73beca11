"""Shared CLI plumbing: consoles, logging, progress observer, output and exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from pacsradar.cli.exitcodes import ExitCode
from pacsradar.errors import UsageError
from pacsradar.models import ScanReport, Severity, TargetResult, UnreachableGroup
from pacsradar.outcome import could_not_test
from pacsradar.phi import peer_text
from pacsradar.render import iter_jsonl, plain_lines, plural, print_report

if TYPE_CHECKING:
    from rich.progress import TaskID

    from pacsradar.store.views import AcceptedRisk

T = TypeVar("T")

OUTPUT_FORMATS = ("table", "json", "jsonl")
#: The report formats a scan's own report is also written in (``pacsradar.report.render``).
REPORT_FORMATS = ("html", "sarif", "csv", "md")
#: File name endings that name an output format (``-o report.json`` needs no ``-f``).
FORMAT_BY_SUFFIX = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "table",
    ".text": "table",
    ".html": "html",
    ".htm": "html",
    ".sarif": "sarif",
    ".csv": "csv",
    ".md": "md",
    ".markdown": "md",
}
#: Endings of formats only ``pacsradar report`` writes (from the stored scan): the error says so.
REPORT_ONLY_SUFFIXES = {".pdf": "pdf"}

# Options shared by several commands, declared once (typer reads them, never mutates them).
# One convention in every command, as in nmap/nuclei: -o/--output is the file, -f/--format the
# format. ``--format`` keeps its old spelling; ``-o json`` (the old short form of the format)
# still works for one release, with a warning.
OPT_FORMAT = typer.Option(
    None,
    "--format",
    "-f",
    help="table, json, jsonl, html, sarif, csv or md (default: from the --output file's ending, else table).",
)
OPT_OUTPUT = typer.Option(
    None, "--output", "-o", help="Write the report to this file (format from -f or the extension)."
)
OPT_FAIL_ON = typer.Option(
    None,
    "--fail-on",
    help="Exit 1 if a finding (not an accepted risk) is at least this severe; exit 4 if anything "
    "could not be tested.",
)
OPT_ALLOW_INCOMPLETE = typer.Option(
    False, "--allow-incomplete", help="With --fail-on: do not exit 4 when something could not be tested."
)
OPT_LINK_KEY = typer.Option(
    None,
    "--link-key",
    envvar="PACSRADAR_LINK_KEY",
    help="Key for patient hashes that link across runs (else random per run).",
)
OPT_LOG_LEVEL = typer.Option("warning", "--log-level", help="Log level for pacsradar's own logger.")
OPT_NO_PROGRESS = typer.Option(False, "--no-progress", help="No progress bar.")


def program() -> str:
    """How to run pacsradar again, for the commands it prints (resume, open the report...).

    ``pacsradar`` when that is what the shell finds; the path it was started by otherwise
    (``.venv/bin/pacsradar`` from the README's set-up, no venv activated), and
    ``python -m pacsradar`` with this interpreter when started so. The printed command then
    works when pasted, whichever way pacsradar was installed.
    """
    import shlex
    import shutil

    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "pacsradar":
        found = shutil.which("pacsradar")
        if found and Path(argv0).exists() and Path(found).resolve() == Path(argv0).resolve():
            return "pacsradar"
        return shlex.quote(argv0)
    if argv0.endswith("__main__.py"):
        return f"{shlex.quote(sys.executable)} -m pacsradar"
    return "pacsradar"


def stderr_console(*, highlight: bool = True) -> Console:
    """The CLI's stderr: lines never wrap (soft_wrap), so a piped error stays one greppable line."""
    return Console(stderr=True, soft_wrap=True, highlight=highlight)


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

    def __init__(self, console: Console, interrupt: Callable[[], int]) -> None:
        self.console = console
        self.interrupt = interrupt
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.count > 1:
            _exit_now(signal.SIGINT, None)  # the user asked twice: no cleanup beyond flushing
        done = self.interrupt()
        self.console.print(
            f"stopping: keeping the records of {plural(done, 'finished endpoint')}… "
            "(Ctrl-C again to quit at once)",
            markup=False,
            highlight=False,
        )


def run_interruptible(
    main: Callable[[], Coroutine[Any, Any, T]], console: Console, interrupt: Callable[[], int]
) -> tuple[T, bool]:
    """Run ``main()`` on a new loop with Ctrl-C handling; returns its result and whether the
    user interrupted it. ``interrupt()`` cancels the work and returns the finished endpoints.

    Like :func:`asyncio.run`, except that after a Ctrl-C it does not wait for worker threads
    (a blocking share client still inside its own time bound): the loop closes without joining
    them, so the report is written at once.
    """
    loop = asyncio.new_event_loop()
    handler = _Interrupt(console, interrupt)
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
        if handler.count:
            # Stopping already: a further Ctrl-C while the report is written exits at once.
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, _exit_now)
        loop.close()
    return result, handler.count > 0


def _exit_now(signum: int, frame: object) -> None:
    """Exit 130 now, flushing what was printed (a second Ctrl-C)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(int(ExitCode.INTERRUPTED))


def exit_interrupted() -> None:
    """After a Ctrl-C, once the report is written: exit 130 now. Not through interpreter
    shutdown, which joins worker threads (a blocking share read, bounded but not cancellable)
    and restores SIGINT's default action, so that a further Ctrl-C would kill the process
    instead of ending it with 130. Everything was committed and flushed before this."""
    logging.shutdown()
    _exit_now(signal.SIGINT, None)


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
    """A rich progress bar on stderr; the engine never prints, this observer does.

    It shows endpoints done of the total, open ports, endpoints per second and the time left
    (from the rate of the last half minute), so a /16 on the default ports (1.1 M endpoints)
    says "18 min left" instead of only how long it has run.
    """

    def __init__(self, console: Console, label: str = "probing") -> None:
        # Imported here: piped and --no-progress runs never draw a bar (start-up, issue 11).
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[found]} open"),
            _rate_column(),
            # time left, not elapsed: what a person waiting needs, and it fits 80 columns
            TimeRemainingColumn(),
            TextColumn("left"),
            console=console,
            transient=True,
            speed_estimate_period=30.0,
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

    def on_unreachable(self, group: UnreachableGroup) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=len(group), found=self.open)

    def on_finish(self, report: ScanReport) -> None:
        self.progress.stop()


def _rate_column() -> Any:
    """A progress column: endpoints per second, from rich's speed estimate."""
    from rich.progress import ProgressColumn, Task

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None:
                return Text("-/s", no_wrap=True)
            # "1,000/s" beside "8000/1081344": endpoints per second, short enough for 80 columns
            return Text(f"{speed:,.0f}/s" if speed >= 10 else f"{speed:.1f}/s", no_wrap=True)

    return RateColumn()


class OutputTarget:
    """Where and how a report is written: checked before any work is done (issue 12 point 5)."""

    def __init__(self, fmt: str, path: Path | None) -> None:
        self.format = fmt
        self.path = path


def output_target(fmt: str | None, output: Path | None) -> OutputTarget:
    """Resolve ``-f``/``-o`` into a format and a writable path, or raise :class:`UsageError`.

    A file never silently gets a format the user did not ask for: ``-o r.txt`` is the plain
    table, ``-o r.json`` JSON, and an unknown ending without ``-f`` is an error.
    """
    if output is not None and fmt is None and str(output) in OUTPUT_FORMATS:
        # The old spelling: ``-o json`` was the format. Honoured, and said so.
        stderr_console().print(
            Text(f"warning: -o now names the output file; treating '{output}' as -f {output}", style="yellow")
        )
        fmt, output = str(output), None
    choices = (*OUTPUT_FORMATS, *REPORT_FORMATS)
    if fmt is not None and fmt not in choices:
        hint = _report_only_hint(fmt, output)
        raise UsageError(hint or f"--format must be one of {', '.join(choices)}")
    if output is not None and fmt is None:
        fmt = FORMAT_BY_SUFFIX.get(output.suffix.lower())
        if fmt is None:
            shown = peer_text(str(output), 200)
            only = REPORT_ONLY_SUFFIXES.get(output.suffix.lower())
            hint = _report_only_hint(only, output) if only else None
            raise UsageError(
                hint
                or f"cannot tell the format of '{shown}' from its ending; give -f "
                f"{'|'.join(choices)} (or name it .json, .jsonl, .txt, .html, .sarif, .csv or .md)"
            )
    if output is not None:
        check_writable(output)
    return OutputTarget(fmt or "table", output)


def _report_only_hint(fmt: str | None, output: Path | None) -> str | None:
    """For a format only ``pacsradar report`` writes (PDF, DefectDojo): which command does."""
    if fmt is None:
        return None
    from pacsradar.report.formats import FORMATS

    if fmt not in FORMATS and fmt != "pdf":
        return None
    where = f" -o '{peer_text(str(output), 200)}'" if output is not None else ""
    return (
        f"{fmt} reports are written from the stored scan: run the scan, then "
        f"`{program()} report -f {fmt}{where}` (it takes the newest scan, or name its id)"
    )


def check_writable(path: Path) -> None:
    """Fail now, in one line naming the file, if ``path`` cannot be written (before a long
    scan, not after). A file that does not exist yet is created and removed again: only the
    kernel knows that ``/proc/r.json`` cannot be created."""
    shown = f"'{peer_text(str(path), 200)}'"
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"cannot write the report to {shown}: it is a directory")
    if not parent.is_dir():
        where = peer_text(str(parent), 200)
        raise UsageError(f"cannot write the report to {shown}: directory '{where}' does not exist")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UsageError(f"cannot write the report to {shown}: permission denied")
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # created meanwhile: the write will tell
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write the report to {shown}: {why}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        path.unlink()


def write_private(path: Path, text: str | Iterable[str]) -> None:
    """Write a report (text, or its pieces in order) owner-only: it maps where patient data leaks."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        if isinstance(text, str):
            fh.write(text)
        else:
            fh.writelines(text)


def emit(
    report: ScanReport,
    target: OutputTarget,
    console: Console,
    *,
    accepted: Mapping[str, str] | None = None,
    risks: Sequence[AcceptedRisk] = (),
    warnings: Sequence[str] = (),
) -> None:
    """Print or write the report in the chosen format (the table: rich on a terminal, lines off).

    ``accepted`` maps dedupe keys to the expiry of the accepted risk covering them (the table and
    JSON lines mark them); ``risks`` are those risks, for the JSON document's ``accepted_risks``.
    """
    fmt = target.format
    if fmt == "table" and target.path is None:
        print_report(report, console, accepted=accepted, warnings=warnings)
        return
    pieces: Iterable[str]
    if fmt == "table":
        pieces = ("\n".join(plain_lines(report, accepted, warnings)), "\n")
    elif fmt == "json":
        # Streamed, never built whole (issue 26: memory stays flat on a dense network).
        from pacsradar.report.jsondoc import iter_document

        pieces = itertools.chain(iter_document(report, accepted=risks), ("\n",))
    elif fmt in REPORT_FORMATS:
        from pacsradar.report import ReportContext, render

        pieces = (render(fmt, ReportContext(report=report, accepted=tuple(risks))).rstrip("\n"), "\n")
    else:
        pieces = ("\n".join(iter_jsonl(report, accepted)), "\n")
    if target.path is not None:
        try:
            write_private(target.path, pieces)
        except OSError as exc:
            shown = peer_text(str(target.path), 200)
            why = exc.strerror or type(exc).__name__
            raise UsageError(f"cannot write the report to '{shown}': {why}") from None
        stderr_console().print(Text(f"{fmt} report: {target.path}"), highlight=False)
    else:
        sys.stdout.writelines(pieces)
    # Warnings the table would have shown (names that did not resolve, ...) go to stderr.
    for w in warnings:
        stderr_console().print(Text(f"warning: {w}", style="yellow"), highlight=False)


def exit_code(
    report: ScanReport,
    fail_on: Severity | None,
    *,
    accepted: Mapping[str, str] | None = None,
    allow_incomplete: bool = False,
    incomplete: bool | None = None,
) -> ExitCode:
    """130 interrupted; with ``--fail-on``: 1 for a finding at the threshold that is not an
    accepted risk, else 4 when anything could not be tested (unless allowed), else 0."""
    if report.stats.interrupted:
        return ExitCode.INTERRUPTED
    if fail_on is None:
        return ExitCode.OK
    accepted = accepted or {}
    counted = [f for f in report.findings if f.dedupe_key not in accepted]
    if any(f.severity.rank >= fail_on.rank for f in counted):
        return ExitCode.FINDINGS
    if incomplete is None:
        incomplete = bool(could_not_test(report))
    if incomplete and not allow_incomplete:
        return ExitCode.INCOMPLETE
    return ExitCode.OK
