"""``pacsradar report [SCAN] --format html|sarif|csv|json|md|defectdojo``."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from pacsradar.cli.store import DB_HELP, fail, open_db
from pacsradar.errors import PacsradarError, UsageError


def write_private(path: Path, text: str) -> None:
    """Write a report owner-only: it maps where patient data leaks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def register(app: typer.Typer) -> None:
    from pacsradar.report.formats import FORMATS

    @app.command()
    def report(
        scan: str | None = typer.Argument(None, help="Stored scan id (default: the newest)."),
        fmt: str = typer.Option("html", "--format", "-f", help=f"One of: {', '.join(FORMATS)}."),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write to this file (default: standard output)."
        ),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
    ) -> None:
        """Render a stored scan as a report: self-contained HTML, SARIF 2.1.0, CSV, JSON,
        Markdown or DefectDojo Generic Findings Import JSON."""
        from pacsradar.report import ReportContext, render

        try:
            if fmt not in FORMATS:
                raise UsageError(f"unknown format; choose one of {', '.join(FORMATS)}")
            with open_db(db) as store:
                text = render(fmt, ReportContext.from_store(store, scan))
        except PacsradarError as exc:
            raise fail(exc) from None
        if output is None:
            typer.echo(text, nl=False)
            return
        write_private(output, text)
        Console(stderr=True, highlight=False).print(Text(f"{fmt} report: {output}"))


__all__ = ["register", "write_private"]
