"""``pacsradar report [SCAN] --format html|sarif|csv|json|md|defectdojo``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from pacsradar.cli.common import check_writable, stderr_console, write_private
from pacsradar.cli.store import DB_HELP, fail, open_db
from pacsradar.errors import PacsradarError, UsageError
from pacsradar.phi import peer_text

if TYPE_CHECKING:
    from pacsradar.store import Store


def known_scan(store: Store, scan_id: str) -> str:
    """The stored scan ``scan_id`` names (a unique prefix is enough); one that is not stored is
    a usage error (exit 2) naming it, not a store failure."""
    from pacsradar.cli.dbopen import resolve_scan

    return resolve_scan(store, scan_id)


def report_format(output: Path | None) -> str:
    """The format an ``-o`` file's ending names (``r.sarif``: sarif), else html."""
    from pacsradar.cli.common import FORMAT_BY_SUFFIX
    from pacsradar.report.formats import REPORT_FORMATS

    if output is None:
        return "html"
    suffix = output.suffix.lower()
    named = FORMAT_BY_SUFFIX.get(suffix) or suffix.lstrip(".")
    return named if named in REPORT_FORMATS else "html"


def register(app: typer.Typer) -> None:
    from pacsradar.report.formats import BINARY_FORMATS, REPORT_FORMATS

    @app.command()
    def report(
        scan: str | None = typer.Argument(None, help="Stored scan id (default: the newest)."),
        fmt: str | None = typer.Option(
            None,
            "--format",
            "-f",
            help=f"One of: {', '.join(REPORT_FORMATS)} (default: the --output ending, else html).",
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write to this file (default: standard output)."
        ),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
    ) -> None:
        """Render a stored scan as a report: self-contained HTML, SARIF 2.1.0, CSV, JSON,
        Markdown, DefectDojo Generic Findings Import JSON, or a PDF board pack (headless Chromium)."""
        from pacsradar.report import ReportContext
        from pacsradar.report.dispatch import render_bytes

        try:
            fmt = fmt or report_format(output)
            if fmt not in REPORT_FORMATS:
                raise UsageError(f"unknown format; choose one of {', '.join(REPORT_FORMATS)}")
            if fmt in BINARY_FORMATS and output is None and sys.stdout.isatty():
                raise UsageError(f"{fmt} is binary: give --output FILE (or redirect standard output)")
            if output is not None:
                check_writable(output)
            with open_db(db) as store:
                if scan is not None:
                    scan = known_scan(store, scan)
                data = render_bytes(fmt, ReportContext.from_store(store, scan))
        except PacsradarError as exc:
            raise fail(exc) from None
        if output is None:
            if fmt in BINARY_FORMATS:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                typer.echo(data.decode("utf-8"), nl=False)
            return
        try:
            if fmt in BINARY_FORMATS:
                fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            else:
                write_private(output, data.decode("utf-8"))
        except OSError as exc:
            shown = peer_text(str(output), 200)
            raise fail(UsageError(f"cannot write the report to '{shown}': {exc.strerror}")) from None
        stderr_console(highlight=False).print(Text(f"{fmt} report: {output}"))


__all__ = ["known_scan", "register", "write_private"]
