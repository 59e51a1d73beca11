"""Alembic owns the schema: the migrations create exactly the tables the ORM declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from pacsradar.errors import StoreError
from pacsradar.store import Store
from pacsradar.store.core import MIGRATIONS
from pacsradar.store.plain import SCHEMA_REVISION
from pacsradar.store.schema import metadata


def test_migrated_schema_matches_the_models(store: Store) -> None:
    # Given a store migrated to head by opening it
    # When Alembic compares the live schema with the ORM metadata
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Then there is nothing to migrate
    assert diff == []


def test_migrations_downgrade_and_upgrade_cleanly(store: Store) -> None:
    # Given a migrated store
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # When downgrading to base and reopening (which upgrades again)
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    store.migrate()
    # Then every table is back, and migrating twice is a no-op
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert set(metadata.tables) <= tables


def test_a_migration_cut_short_leaves_no_half_made_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a new SQLite store whose first migration dies after Alembic created every table
    # (as a scan SIGKILLed during its first start would)
    url = f"sqlite:///{tmp_path / 'cut.db'}"
    real_upgrade = command.upgrade

    def upgrade_then_die(cfg: Config, revision: str) -> None:
        real_upgrade(cfg, revision)
        raise OperationalError("upgrade", {}, Exception("killed"))

    monkeypatch.setattr(command, "upgrade", upgrade_then_die)
    with pytest.raises(StoreError):
        Store(url)
    monkeypatch.setattr(command, "upgrade", real_upgrade)
    # When the next run opens the same database
    store = Store(url)
    # Then the cut migration left nothing behind (DDL and version row are one transaction),
    # and the store migrates and works
    assert set(metadata.tables) <= set(inspect(store.engine).get_table_names())
    assert store.schema_revision() == SCHEMA_REVISION
    store.close()
