"""``pacsradar checks [--json] [--family NAME]``: every check the registry knows.

Like ``nmap --script-help`` and ``nuclei -tl``: id, severity, protocol family, whether it is
intrusive, and its references, read from :func:`pacsradar.registry.catalogue` (nothing runs).
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pacsradar.cli.common import stderr_console
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.families import BY_NAME


def register(app: typer.Typer) -> None:
    @app.command()
    def checks(
        as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per check)."),
        family: str | None = typer.Option(None, "--family", help=f"Only this family: {', '.join(BY_NAME)}."),
    ) -> None:
        """List every check: id, severity, protocol, intrusive, references."""
        from pacsradar.registry import catalogue
        from pacsradar.report.safe import safe_json

        if family is not None and family not in BY_NAME:
            stderr_console(highlight=False).print(Text(f"error: --family takes {', '.join(BY_NAME)}"))
            raise typer.Exit(ExitCode.USAGE)
        listed = [c for c in catalogue() if family is None or family in c.families]
        if as_json:
            typer.echo(safe_json([c.as_json() for c in listed]))
            return
        table = Table(title=f"pacsradar checks ({len(listed)})", show_lines=False)
        for column in ("Check id", "Severity", "Protocol", "Intrusive", "Title", "References"):
            table.add_column(column, overflow="fold")
        for c in listed:
            table.add_row(
                Text(c.id),
                c.severity.value,
                ", ".join(c.families),
                c.intrusive,
                Text(c.title),
                Text("; ".join(r.title for r in c.references)),
            )
        Console(highlight=False).print(table)


__all__ = ["register"]
