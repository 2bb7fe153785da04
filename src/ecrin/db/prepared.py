"""Statements built once, and run on SQLite without SQLAlchemy's execution layer.

Measured on one indexed look-up through the asyncio engine: ~140 µs when the Core statement
is built at each call, ~40 µs when it is built once (SQLAlchemy still makes a cache key, an
execution context and a result), ~4 µs straight through sqlite3. Hot statements are
therefore declared once, at import, with named `bindparam`s:

    CHILD = Prepared(select(nodes).where(nodes.c.parent_id == bindparam("parent_id")))

On SQLite a statement is compiled once to SQL text and runs on the transaction's own sqlite3
connection (so inside the same transaction), and its rows are small named tuples that read
like SQLAlchemy's (`row.name`, `row._mapping`). Only plain values cross this path: the
schema's types (integers, text, floats, booleans) need no conversion but booleans, which
SQLite returns as 0/1.

On PostgreSQL it is compiled once for asyncpg and runs on the asyncpg connection under
SQLAlchemy's adapter, with the adapter's own prepared statements and transaction: a small
statement costs ~60 µs of CPU there against ~165 through SQLAlchemy's execution layer (its
greenlet, cursor and result), and a PUT runs six. SQLAlchemy's type processors are
applied as it would apply them (the result ones once the columns' types are known).
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Boolean
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import Compiled, SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CompoundSelect, Select

# Named markers: sqlite3 reads the values from the caller's mapping itself (in C).
_SQLITE = sqlite_dialect.dialect(paramstyle="named")

RowFactory = Callable[[sqlite3.Cursor, tuple[Any, ...]], Any]


class Prepared:
    """One statement, built once; compiled for SQLite or asyncpg the first time it runs there."""

    __slots__ = ("_bare", "_postgresql", "_sqlite", "positional", "statement")

    def __init__(
        self,
        statement: Select[Any] | CompoundSelect[Any] | UpdateBase,
        *,
        positional: bool = False,
        new_id: ColumnElement[int] | None = None,
    ) -> None:
        """`positional`: on SQLite its rows are plain tuples, read by position only (building
        a named row costs about as much as reading it, for statements that return thousands).

        `new_id`: an INSERT of one row whose id `PreparedRunner.insert` returns. SQLite gives
        it without a RETURNING clause, which costs a temporary table there (~10 µs, as much
        as the insert itself)."""
        self._bare = statement
        if new_id is not None:
            assert isinstance(statement, Insert)
            statement = statement.returning(new_id)
        self.statement = statement
        self.positional = positional
        self._sqlite: _SqliteForm | None = None
        self._postgresql: _PostgresqlForm | None = None

    def for_sqlite(self) -> _SqliteForm:
        if self._sqlite is None:
            compiled = self._bare.compile(dialect=_SQLITE)
            self._sqlite = _SqliteForm(
                compiled.string,
                _fixed_values(compiled),
                None if self.positional else _row_factory(self._bare),
            )
        return self._sqlite

    def for_postgresql(self, dialect: Dialect) -> _PostgresqlForm:
        if self._postgresql is None:
            self._postgresql = _PostgresqlForm(self, self.statement.compile(dialect=dialect))
        return self._postgresql


def _fixed_values(compiled: Compiled) -> dict[str, Any]:
    """Values written in the statement itself (`.values(flag=True)`, column defaults)."""
    assert isinstance(compiled, SQLCompiler)
    required = {compiled.bind_names[b] for b in compiled.binds.values() if b.required}
    fixed = {n: v for n, v in compiled.params.items() if n not in required}
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default  # SQLAlchemy fills these in Python, at each run
        if default is None or not default.is_scalar:
            raise TypeError(f"{column} has no constant default to prepare")
        fixed[compiled.bind_names[compiled.binds[column.key]]] = default.arg  # type: ignore[attr-defined]
    return fixed


class _SqliteForm(NamedTuple):
    sql: str  # with `:name` markers
    fixed: dict[str, Any]
    rows: RowFactory | None

    def parameters(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**self.fixed, **values} if self.fixed else values


class _PostgresqlForm:
    """A statement as asyncpg runs it: `$n` markers, the parameter each stands for, and how
    its records become rows."""

    __slots__ = ("_binds", "_make", "_names", "_rows", "_types", "fixed", "sql")

    def __init__(self, prepared: Prepared, compiled: Compiled) -> None:
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.fixed = _fixed_values(compiled)
        self._names = tuple(compiled.positiontup or ())  # `$1` is the first; no repeats
        # e.g. an array's items; never a sequence (tuple parameters: none prepared)
        self._binds = cast(Mapping[str, Callable[[Any], Any]], compiled._bind_processors)
        self._types = [column.type for column in compiled._result_columns]
        self._make: Callable[[Sequence[Any]], Any] = (
            tuple
            if prepared.positional or not self._types
            else _row_type(_column_names(prepared.statement))._make
        )
        self._rows: Callable[[Sequence[Any]], Any] | None = None

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        merged = {**self.fixed, **values} if self.fixed else values
        arguments = [merged[name] for name in self._names]
        if self._binds:
            for i, name in enumerate(self._names):
                if (process := self._binds.get(name)) is not None:
                    arguments[i] = process(arguments[i])
        return arguments

    def rows(self, dialect: Dialect, attributes: Sequence[Any]) -> Callable[[Sequence[Any]], Any]:
        """How a record becomes a row, given its columns (asyncpg's, with their type oids):
        SQLAlchemy's result processors depend on those."""
        if self._rows is None:
            processors = [
                kind._cached_result_processor(dialect, attribute.type.oid)
                for kind, attribute in zip(self._types, attributes, strict=True)
            ]
            make = self._make
            if any(processors):
                make = lambda record: self._make(  # noqa: E731
                    [v if p is None else p(v) for p, v in zip(processors, record, strict=True)]
                )
            self._rows = make
        return self._rows


def _column_names(statement: Select[Any] | CompoundSelect[Any] | UpdateBase) -> tuple[str, ...]:
    columns = _columns_of(statement)
    # Repeated or missing names (joins of aliases, NULL columns) are reached by position.
    return tuple(getattr(column, "key", None) or f"_{i}" for i, column in enumerate(columns))


def _columns_of(statement: Select[Any] | CompoundSelect[Any] | UpdateBase) -> Sequence[Any]:
    columns = getattr(statement, "selected_columns", None)
    if columns is None:  # an UPDATE or DELETE: what it returns, if anything
        return getattr(statement, "_returning", ())
    return columns  # type: ignore[no-any-return]


def _row_factory(statement: Select[Any] | CompoundSelect[Any] | UpdateBase) -> RowFactory | None:
    columns = _columns_of(statement)
    if not columns:
        return None
    booleans = [i for i, column in enumerate(columns) if isinstance(column.type, Boolean)]
    row_type = _row_type(_column_names(statement))
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
    """Runs prepared statements in one transaction: on its sqlite3 connection, on its asyncpg
    connection, or through SQLAlchemy (a runner made with neither)."""

    __slots__ = ("_asyncpg", "_conn", "_raw")

    def __init__(
        self,
        conn: AsyncConnection,
        raw: sqlite3.Connection | None,
        asyncpg: Any = None,  # SQLAlchemy's adapter of an asyncpg connection
    ) -> None:
        self._conn = conn
        self._raw = raw
        self._asyncpg = asyncpg

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    @property
    def sqlite(self) -> sqlite3.Connection | None:
        """The transaction's own sqlite3 connection (None on PostgreSQL)."""
        return self._raw

    @property
    def direct(self) -> bool:
        """Whether statements run on the driver, not through SQLAlchemy's execution layer."""
        return self._raw is not None or self._asyncpg is not None

    @classmethod
    async def of(cls, conn: AsyncConnection) -> PreparedRunner:
        sync = conn.sync_connection  # started, in a transaction: no I/O to reach its driver
        pooled = sync.connection if sync is not None else await conn.get_raw_connection()
        if conn.dialect.name == "sqlite":
            return cls(conn, getattr(pooled.driver_connection, "raw", None))  # sqlite_inline's
        adapted = pooled.dbapi_connection
        if all(hasattr(adapted, name) for name in _ADAPTER_PARTS):
            return cls(conn, None, adapted)
        return cls(conn, None)  # another driver, or an adapter this code does not know

    def _watched(self, sql: str, parameters: Any) -> None:
        """Whoever watches the engine's statements (counters, tracing) sees these too."""
        connection = self._conn.sync_connection
        if connection is not None and connection.dispatch.before_cursor_execute:
            connection.dispatch.before_cursor_execute(
                connection, None, sql, parameters, None, False
            )

    def _sqlite(self, prepared: Prepared, values: Mapping[str, Any]) -> sqlite3.Cursor:
        assert self._raw is not None
        form = prepared.for_sqlite()
        parameters = form.parameters(values)
        self._watched(form.sql, parameters)
        cursor = self._raw.cursor()
        cursor.row_factory = form.rows
        try:
            cursor.execute(form.sql, parameters)
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it (IntegrityError, …)
            raise DBAPIError.instance(form.sql, parameters, exc, sqlite3.Error) from exc
        return cursor

    async def _postgresql(
        self, prepared: Prepared, values: Mapping[str, Any], *, one: bool = False
    ) -> tuple[Any, Callable[[Sequence[Any]], Any], Any]:
        """Run on asyncpg: the statement, how its records become rows, and its records (or
        record, or None, if `one`)."""
        adapted, dialect = self._asyncpg, self._conn.dialect
        form = prepared.for_postgresql(dialect)
        arguments = form.arguments(values)
        self._watched(form.sql, arguments)
        try:
            if adapted._transaction is None and not adapted.autocommit:
                await adapted._start_transaction()  # the adapter begins at the first statement
            statement, attributes = await adapted._prepare(form.sql, 0)
            records = await (statement.fetchrow if one else statement.fetch)(*arguments)
        except Exception as exc:
            raise await self._postgresql_error(exc, form.sql, arguments) from exc
        return statement, form.rows(dialect, attributes), records

    async def _postgresql_error(self, exc: Exception, sql: str, arguments: Any) -> BaseException:
        """`exc` as SQLAlchemy would raise it (IntegrityError, …); a connection the server
        dropped is invalidated, as SQLAlchemy does, so the pool renews it."""
        dialect = self._conn.dialect
        base = dialect.loaded_dbapi.Error
        try:
            self._asyncpg._handle_exception(exc)  # raises asyncpg's error as a DB-API one
        except base as error:
            lost = dialect.is_disconnect(error, self._asyncpg, None)
            if lost:  # the server restarted, most likely: renew every connection made before
                pooled = await self._conn.get_raw_connection()
                self._conn.sync_engine.pool._invalidate(pooled, error, _checkin=False)
                await self._conn.invalidate(error)
            return DBAPIError.instance(
                sql, arguments, error, base, connection_invalidated=lost, dialect=dialect
            )
        except Exception as error:
            return error
        return exc

    async def first(self, prepared: Prepared, **values: Any) -> Any | None:
        if self._raw is not None:
            return self._sqlite(prepared, values).fetchone()
        if self._asyncpg is not None:
            _, row, record = await self._postgresql(prepared, values, one=True)
            return None if record is None else row(record)
        return (await self._conn.execute(prepared.statement, values)).first()

    async def all(self, prepared: Prepared, **values: Any) -> Sequence[Any]:
        if self._raw is not None:
            return self._sqlite(prepared, values).fetchall()
        if self._asyncpg is not None:
            _, row, records = await self._postgresql(prepared, values)
            return [row(record) for record in records]
        return (await self._conn.execute(prepared.statement, values)).all()

    async def insert(self, prepared: Prepared, **values: Any) -> int:
        """Insert the row of a statement prepared with `new_id`; that id."""
        if self._raw is not None:
            new_id = self._sqlite(prepared, values).lastrowid
        else:
            row = await self.first(prepared, **values)
            new_id = None if row is None else row[0]
        assert isinstance(new_id, int)
        return new_id

    async def run(self, prepared: Prepared, **values: Any) -> int:
        """Execute a change; the number of rows it touched."""
        if self._raw is not None:
            return self._sqlite(prepared, values).rowcount
        if self._asyncpg is not None:
            statement, _, _ = await self._postgresql(prepared, values)
            status = statement.get_statusmsg() or ""  # "UPDATE 3", "INSERT 0 1"
            count = status.rpartition(" ")[2]
            return int(count) if count.isdigit() else -1
        return (await self._conn.execute(prepared.statement, values)).rowcount


# What the asyncpg path uses of SQLAlchemy's adapter (not public: checked, never assumed).
_ADAPTER_PARTS = (
    "_transaction",
    "_start_transaction",
    "_prepare",
    "_handle_exception",
    "autocommit",
)
