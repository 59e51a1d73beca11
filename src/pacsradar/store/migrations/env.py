"""Alembic environment: the store hands us its open connection; we never read alembic.ini.

Run through :meth:`pacsradar.store.Store.migrate`, which puts the connection into
``config.attributes["connection"]``. Logging is left alone on purpose (no ``fileConfig``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from pacsradar.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from sqlalchemy import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
        with engine.begin() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
