"""The command line: parse, call the library, render, set the exit code. Nothing else."""

from __future__ import annotations

import os

import typer

from pacsradar import __version__

app = typer.Typer(
    name="pacsradar",
    help="Find exposed DICOM/PACS services, portals and shares, and the patient data they leak.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts show URLs like smb://host[/share]; no markup interpretation, so no surprises.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pacsradar {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """pacsradar: authorised scanning only. It scans exactly what you name; exclusions win."""


def _register() -> None:
    # Each subcommand module adds its commands to ``app``; one line per module.
    for optional in ("scan", "files", "store", "report", "serve", "checks"):
        try:
            mod = __import__(f"pacsradar.cli.{optional}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"pacsradar.cli.{optional}":
                raise
            continue
        mod.register(app)


def main() -> None:
    # Issue 26: pydantic looks for plugins (importlib.metadata entry points of every installed
    # distribution, ~60 ms of a 0.35 s start-up) when it builds its first model; pacsradar uses
    # none. Set the variable (even to "") to have pydantic load them as usual.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _register()
    app()
