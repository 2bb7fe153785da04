"""Statements built once, and run on SQLite without SQLAlchemy's execution layer.

Measured on one indexed look-up through the asyncio engine: ~140 µs when the Core statement
is built at each call, ~40 µs when it is built once (SQLAlchemy still makes a cache key, an
execution context and a result), ~4 µs straight through sqlite3. Hot statements are
therefore declared once, at import, with named `bindparam`s:

    CHILD = Prepared(select(nodes).where(nodes.c.parent_id == bindparam("parent_id")))

On PostgreSQL SQLAlchemy runs the prebuilt statement. On SQLite it is compiled once to SQL
text and runs on the transaction's own sqlite3 connection (so inside the same transaction),
and its rows are small named tuples that read like SQLAlchemy's (`row.name`, `row._mapping`).
Only plain values cross this path: the schema's types (integers, text, floats, booleans)
need no conversion but booleans, which SQLite returns as 0/1.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Boolean
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import CompoundSelect, Select

# Named markers: sqlite3 reads the values from the caller's mapping itself (in C).
_SQLITE = sqlite_dialect.dialect(paramstyle="named")

RowFactory = Callable[[sqlite3.Cursor, tuple[Any, ...]], Any]


class Prepared:
    """One statement, built once; compiled for SQLite the first time it runs there."""

    __slots__ = ("_sqlite", "positional", "statement")

    def __init__(
        self,
        statement: Select[Any] | CompoundSelect[Any] | UpdateBase,
        *,
        positional: bool = False,
    ) -> None:
        """`positional`: on SQLite its rows are plain tuples, read by position only (building
        a named row costs about as much as reading it, for statements that return thousands)."""
        self.statement = statement
        self.positional = positional
        self._sqlite: _SqliteForm | None = None

    def for_sqlite(self) -> _SqliteForm:
        if self._sqlite is None:
            compiled = self.statement.compile(dialect=_SQLITE)
            required = {compiled.bind_names[b] for b in compiled.binds.values() if b.required}
            # Values written in the statement itself, e.g. `.values(flag=True)`.
            fixed = {n: v for n, v in compiled.params.items() if n not in required}
            for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
                default = column.default  # SQLAlchemy fills these in Python, at each run
                if default is None or not default.is_scalar:
                    raise TypeError(f"{column} has no constant default to prepare")
                fixed[compiled.bind_names[compiled.binds[column.key]]] = default.arg  # type: ignore[attr-defined]
            self._sqlite = _SqliteForm(
                compiled.string,
                fixed,
                None if self.positional else _row_factory(self.statement),
            )
        return self._sqlite


class _SqliteForm(NamedTuple):
    sql: str  # with `:name` markers
    fixed: dict[str, Any]
    rows: RowFactory | None

    def parameters(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**self.fixed, **values} if self.fixed else values


def _row_factory(statement: Select[Any] | CompoundSelect[Any] | UpdateBase) -> RowFactory | None:
    columns = getattr(statement, "selected_columns", None)
    if columns is None:  # an UPDATE or DELETE without RETURNING
        returning = getattr(statement, "_returning", ())
        if not returning:
            return None
        columns = returning
    # Repeated or missing names (joins of aliases, NULL columns) are reached by position.
    names = [getattr(column, "key", None) or f"_{i}" for i, column in enumerate(columns)]
    booleans = [i for i, column in enumerate(columns) if isinstance(column.type, Boolean)]
    row_type = _row_type(tuple(names))
    if not booleans:
        return lambda _cursor, values: row_type._make(values)

    def with_booleans(_cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Any:
        converted = list(values)
        for i in booleans:
            if converted[i] is not None:
                converted[i] = bool(converted[i])
        return row_type._make(converted)

    return with_booleans


def _row_type(names: tuple[str, ...]) -> Any:
    base = namedtuple("Row", names, rename=True)  # type: ignore[misc]  # names known at run time

    class Row(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(self._fields, self, strict=True))

    return Row


class PreparedRunner:
    """Runs prepared statements in one transaction: its sqlite3 connection, or SQLAlchemy."""

    __slots__ = ("_conn", "_raw")

    def __init__(self, conn: AsyncConnection, raw: sqlite3.Connection | None) -> None:
        self._conn = conn
        self._raw = raw

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    @property
    def sqlite(self) -> sqlite3.Connection | None:
        """The transaction's own sqlite3 connection (None on PostgreSQL)."""
        return self._raw

    @classmethod
    async def of(cls, conn: AsyncConnection) -> PreparedRunner:
        raw = None
        if conn.dialect.name == "sqlite":
            sync = conn.sync_connection  # started, in a transaction: no I/O to reach its driver
            pooled = sync.connection if sync is not None else await conn.get_raw_connection()
            raw = getattr(pooled.driver_connection, "raw", None)  # sqlite_inline's connection
        return cls(conn, raw)

    def _sqlite(self, prepared: Prepared, values: Mapping[str, Any]) -> sqlite3.Cursor:
        assert self._raw is not None
        form = prepared.for_sqlite()
        parameters = form.parameters(values)
        connection = self._conn.sync_connection
        if connection is not None and connection.dispatch.before_cursor_execute:
            # Whoever watches the engine's statements (counters, tracing) sees these too.
            connection.dispatch.before_cursor_execute(
                connection, None, form.sql, parameters, None, False
            )
        cursor = self._raw.cursor()
        cursor.row_factory = form.rows
        try:
            cursor.execute(form.sql, parameters)
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it (IntegrityError, …)
            raise DBAPIError.instance(form.sql, parameters, exc, sqlite3.Error) from exc
        return cursor

    async def first(self, prepared: Prepared, **values: Any) -> Any | None:
        if self._raw is not None:
            return self._sqlite(prepared, values).fetchone()
        return (await self._conn.execute(prepared.statement, values)).first()

    async def all(self, prepared: Prepared, **values: Any) -> Sequence[Any]:
        if self._raw is not None:
            return self._sqlite(prepared, values).fetchall()
        return (await self._conn.execute(prepared.statement, values)).all()

    async def run(self, prepared: Prepared, **values: Any) -> int:
        """Execute a change; the number of rows it touched."""
        if self._raw is not None:
            return self._sqlite(prepared, values).rowcount
        return (await self._conn.execute(prepared.statement, values)).rowcount
