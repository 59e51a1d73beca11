"""``pacsradar checks [--json] [--family NAME]``: every check the registry knows.

Like ``nmap --script-help`` and ``nuclei -tl``: id, severity, protocol family, whether it is
intrusive, and its references, read from :func:`pacsradar.registry.catalogue` (nothing runs).
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.text import Text

from pacsradar.cli.common import stderr_console
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.cli.listing import print_listing
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
        print_listing(
            Console(highlight=False),
            ("Check id", "Severity", "Protocol", "Intrusive", "Title", "References"),
            [
                (
                    c.id,
                    c.severity_label,
                    ", ".join(c.families),
                    c.intrusive,
                    c.title,
                    "; ".join(r.title for r in c.references),
                )
                for c in listed
            ],
            keep=("Check id",),
            title=f"pacsradar checks ({len(listed)})",
            drop_order=("References", "Intrusive", "Protocol"),
        )


__all__ = ["register"]
