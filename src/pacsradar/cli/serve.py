"""``pacsradar serve``: the dashboard on 127.0.0.1, behind a token generated on first run."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from pacsradar.cli.common import stderr_console
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.cli.store import DB_HELP, fail, open_db
from pacsradar.errors import PacsradarError


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
        port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to bind."),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
        token_file: Path | None = typer.Option(
            None, "--token-file", help="Where the token is kept (default: user config dir)."
        ),
        allow_remote: bool = typer.Option(
            False, "--allow-remote", help="Allow binding a non-loopback address."
        ),
    ) -> None:
        """Serve the dashboard: overview, assets, findings, diff, and a JSON API (OpenAPI)."""
        from pacsradar.dashboard import create_app, load_or_create_token
        from pacsradar.dashboard import serve as run
        from pacsradar.dashboard.server import is_loopback

        err = stderr_console(highlight=False)
        if not is_loopback(host) and not allow_remote:
            err.print(
                Text(
                    "error: the dashboard lists where patient data leaks; it binds loopback "
                    "only unless you pass --allow-remote (and put TLS in front of it)",
                    style="bold red",
                )
            )
            raise typer.Exit(ExitCode.USAGE)
        try:
            token, created = load_or_create_token(token_file)
        except (OSError, ValueError) as exc:
            err.print(Text(f"error: cannot load the dashboard token ({type(exc).__name__})"))
            raise typer.Exit(ExitCode.USAGE) from None
        try:
            store = open_db(db)
        except PacsradarError as exc:
            raise fail(exc) from None
        shown = f"[{host}]" if ":" in host else host
        if created:
            err.print(Text("A dashboard token was generated and saved (owner-only)."))
        err.print(Text(f"Dashboard: http://{shown}:{port}/?token={token}"))
        err.print(Text(f"Store: {store.display_url}"))
        with store:
            run(create_app(store, token=token), host=host, port=port)


__all__ = ["register"]
