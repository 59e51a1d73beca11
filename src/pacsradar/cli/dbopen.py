"""Opening the findings store from the command line (``--db``), shared by every command.

``--db`` takes a SQLite file path (``--db /tmp/x.db``) or an SQLAlchemy URL
(``sqlite:///x.db``, ``postgresql+psycopg://...``): :func:`pacsradar.store.plain.db_url`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from pacsradar.cli.common import stderr_console
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.errors import PacsradarError, UsageError
from pacsradar.phi import peer_text

if TYPE_CHECKING:
    from pacsradar.store import Store
    from pacsradar.store.plain import ScanWriter

DB_HELP = (
    "The findings store: a SQLite file path or an SQLAlchemy URL (default: SQLite in the user "
    "data directory)."
)


def _err() -> Console:
    return stderr_console(highlight=False)


def fail(exc: PacsradarError) -> typer.Exit:
    """Print our own error text (never peer data, see errors.py) and pick the exit code."""
    _err().print(Text(f"error: {exc}", style="bold red"))
    return typer.Exit(ExitCode.USAGE if isinstance(exc, UsageError) else ExitCode.SCAN_ERROR)


def open_db(db: str | None, *, create: bool = False) -> Store:
    """Open the findings store; read-only commands (``create=False``) never create one.

    A mistyped ``--db sqlite:////typo/dir/x.db`` is then an error, not a new empty database in a
    new directory. A missing database driver is one line naming the extra to install.
    """
    from pacsradar.store import Store
    from pacsradar.store.plain import db_url

    url = db_url(db)
    if not create:
        path = _sqlite_path(url)
        if path is not None and not path.exists():
            where = peer_text(str(path), 300)
            raise UsageError(f"no findings store at '{where}' (nothing stored yet, or a typo in --db)")
    try:
        return Store(url)
    except ModuleNotFoundError as exc:
        raise UsageError(_missing_driver(url, exc)) from None


def open_writer(db: str | None) -> ScanWriter:
    """The store a new scan writes to: created and migrated if need be, and on a current
    SQLite file the SQLAlchemy-free writer (:mod:`pacsradar.store.lite`, start-up)."""
    from pacsradar.store.lite import open_scan_writer
    from pacsradar.store.plain import db_url

    url = db_url(db)
    try:
        return open_scan_writer(url)
    except ModuleNotFoundError as exc:
        raise UsageError(_missing_driver(url, exc)) from None


def resolve_scan(store: Store, scan_id: str, *, strict: bool = True) -> str:
    """The stored scan ``scan_id`` names: itself, or the one scan whose id starts with it
    (``report 20261207T204146Z-17`` as in git). None or several is a usage error naming them
    (not ``strict``: none gives ``scan_id`` back, for the caller's own error)."""
    from pacsradar.errors import StoreError

    try:
        store.get_scan(scan_id)
        return scan_id
    except StoreError:
        pass
    shown = peer_text(scan_id, 80)
    found = store.scan_ids_starting(scan_id) if scan_id.strip() else []
    if len(found) == 1:
        return found[0]
    if not found and not strict:
        return scan_id
    if found:
        listed = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise UsageError(f"'{shown}' names several stored scans ({listed}); give more of the id")
    raise UsageError(f"no stored scan '{shown}' in {store.display_url} (see `pacsradar scans`)")


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, or ``None`` (memory, URI form, another backend)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _missing_driver(url: str, exc: ModuleNotFoundError) -> str:
    if url.startswith(("postgresql", "postgres")):
        return "PostgreSQL stores need the psycopg driver: pip install 'pacsradar[postgres]'"
    return f"the database driver for this --db is not installed ({exc.name or 'unknown module'})"


__all__ = ["DB_HELP", "fail", "open_db", "open_writer", "resolve_scan"]
