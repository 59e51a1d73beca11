"""``pacsradar report [SCAN] --format html|sarif|csv|json|md|defectdojo``."""

from __future__ import annotations

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
    from pacsradar.report.formats import FORMATS

    if output is None:
        return "html"
    suffix = output.suffix.lower()
    named = FORMAT_BY_SUFFIX.get(suffix) or suffix.lstrip(".")
    return named if named in FORMATS else "html"


def register(app: typer.Typer) -> None:
    from pacsradar.report.formats import FORMATS

    @app.command()
    def report(
        scan: str | None = typer.Argument(None, help="Stored scan id (default: the newest)."),
        fmt: str | None = typer.Option(
            None,
            "--format",
            "-f",
            help=f"One of: {', '.join(FORMATS)} (default: from the --output file's ending, else html).",
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write to this file (default: standard output)."
        ),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
    ) -> None:
        """Render a stored scan as a report: self-contained HTML, SARIF 2.1.0, CSV, JSON,
        Markdown or DefectDojo Generic Findings Import JSON."""
        from pacsradar.report import ReportContext, render

        try:
            fmt = fmt or report_format(output)
            if fmt not in FORMATS:
                raise UsageError(f"unknown format; choose one of {', '.join(FORMATS)}")
            if output is not None:
                check_writable(output)
            with open_db(db) as store:
                if scan is not None:
                    scan = known_scan(store, scan)
                text = render(fmt, ReportContext.from_store(store, scan))
        except PacsradarError as exc:
            raise fail(exc) from None
        if output is None:
            typer.echo(text, nl=False)
            return
        try:
            write_private(output, text)
        except OSError as exc:
            shown = peer_text(str(output), 200)
            raise fail(UsageError(f"cannot write the report to '{shown}': {exc.strerror}")) from None
        stderr_console(highlight=False).print(Text(f"{fmt} report: {output}"))


__all__ = ["known_scan", "register", "write_private"]
