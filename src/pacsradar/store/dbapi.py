"""A DBAPI connection as the store's bulk writer (:mod:`~pacsradar.store.bulk`) needs it.

SQL is written once with ``?`` placeholders; values are turned into what each backend stores
(SQLite, as SQLAlchemy's types store them: naive-UTC text datetimes and 0/1 booleans;
PostgreSQL: its own types). Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

#: SQLAlchemy's SQLite DATETIME storage format (naive UTC; schema.UTCDateTime drops the offset).
SQLITE_DT = "%Y-%m-%d %H:%M:%S.%f"
_CHUNK = 500  # bound parameters per IN list (SQLite's default limit is 32,766; PostgreSQL 65,535)


class Db:
    """A DBAPI connection as the bulk writer needs it: SQL with ``?`` placeholders, and the
    values each backend stores (SQLite: text datetimes and 0/1; PostgreSQL: its own types)."""

    def __init__(
        self,
        rows: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]],
        many: Callable[[str, list[tuple[Any, ...]]], object],
        *,
        sqlite: bool,
    ) -> None:
        self.rows = rows
        self._many = many
        self.sqlite = sqlite

    @classmethod
    def of_sqlite3(cls, conn: Any) -> Db:
        """A :class:`sqlite3.Connection`."""
        return cls(lambda q, p: conn.execute(q, p).fetchall(), conn.executemany, sqlite=True)

    @classmethod
    def of_sqlalchemy(cls, conn: Any) -> Db:
        """A SQLAlchemy ``Connection`` inside its transaction: the driver's own SQL, no ORM."""
        sqlite = conn.dialect.name == "sqlite"

        def sql(query: str) -> str:
            return query if sqlite else query.replace("?", "%s")  # psycopg: format style

        def rows(query: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
            return conn.exec_driver_sql(sql(query), tuple(params)).fetchall()  # type: ignore[no-any-return]

        def many(query: str, params: list[tuple[Any, ...]]) -> None:
            conn.exec_driver_sql(sql(query), params)

        return cls(rows, many, sqlite=sqlite)

    def many(self, query: str, params: list[tuple[Any, ...]]) -> None:
        if params:
            self._many(query, params)

    def dt(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if self.sqlite:  # SQLITE_DT, at a fraction of strftime's cost
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def read_dt(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)  # SQLITE_DT
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else bool(value)

    def select_in(self, query: str, head: Sequence[Any], items: Sequence[Any]) -> Iterator[Sequence[Any]]:
        """Rows of ``query`` (ending in ``IN ({})``) for ``items``, a chunk at a time."""
        for i in range(0, len(items), _CHUNK):
            chunk = items[i : i + _CHUNK]
            yield from self.rows(query.format(", ".join("?" * len(chunk))), (*head, *chunk))


__all__ = ["SQLITE_DT", "Db"]
