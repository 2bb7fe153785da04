"""The SQL engine for a database URL, per dialect, and the database-error boundary.

Two dialects are supported, each through one asyncio driver:
- SQLite through `sqlite_inline` (statements on the event loop, waits on a thread): one
  file, WAL, `synchronous=FULL`; write transactions begin with `BEGIN IMMEDIATE` (no lock
  upgrades, hence no deadlocks between writers).
- PostgreSQL via asyncpg: a pooled engine; write transactions run at READ COMMITTED and
  serialise where it matters with row locks (see `SqlTransaction`), read transactions run at
  REPEATABLE READ, READ ONLY, so a PROPFIND sees one snapshot.

Driver errors never leave this package: `database_errors()` maps them to `ecrin.core.errors`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_

from ecrin.core.errors import BadRequest, Conflict, EcrinError, StorageError, Unavailable
from ecrin.db.sqlite_inline import BUSY_TIMEOUT_MS, InlineConnection, InlineDBAPI

# SQLSTATEs after which the same work, run again, will most likely succeed.
_RETRYABLE_SQLSTATES = {
    "40001": "a concurrent change got in the way (serialization failure)",
    "40P01": "a concurrent change got in the way (deadlock)",
    "55P03": "a row is locked by another request",
    "57P01": "the database server is shutting down",
    "53300": "the database has no free connection slot",
}


# PostgreSQL: seconds a pooled connection may sit idle before it is checked (`_ping_idle`).
PING_AFTER_IDLE = 10.0


@dataclass(frozen=True, slots=True)
class EngineOptions:
    durable: bool = True  # SQLite: synchronous=FULL (else OFF)
    pool_size: int = 10  # PostgreSQL: connections kept per process (as many again in bursts)
    pool_timeout: float = 30.0  # seconds to wait for a free connection
    ping_after_idle: float = PING_AFTER_IDLE


def normalise_url(url: str) -> URL:
    """The SQLAlchemy URL for a database URL, with the asyncio driver we support filled in.

    `postgresql://`, `postgres://` and `postgresql+asyncpg://` mean PostgreSQL over asyncpg;
    `sqlite://` and `sqlite+aiosqlite://` mean SQLite (SQLAlchemy's aiosqlite dialect, run by
    `sqlite_inline`). Other drivers are refused rather than half-supported.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadRequest(f"cannot read database URL: {exc}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        return parsed.set(drivername="sqlite+aiosqlite")
    raise BadRequest(
        f"unsupported database URL {parsed.drivername}://… "
        "(supported: sqlite:///path, postgresql://user:password@host:port/database)"
    )


def create_engine(url: URL, options: EngineOptions) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, module=InlineDBAPI())
        _configure_sqlite(engine, durable=options.durable)
        return engine
    engine = create_async_engine(
        url,
        pool_size=options.pool_size,
        max_overflow=options.pool_size,
        pool_timeout=options.pool_timeout,
        pool_recycle=3600,
    )
    _ping_idle(engine, options.ping_after_idle)
    return engine


def _ping_idle(engine: AsyncEngine, after: float) -> None:
    """Check a pooled connection before lending it only if it sat idle `after` seconds.

    SQLAlchemy's `pool_pre_ping` checks every one, and asyncpg's check is three round trips
    (BEGIN, an empty query, ROLLBACK): a third of a small read's database time. A connection
    in steady use is not checked: if the server dropped it meanwhile (a restart), the one
    request using it fails with 503, and the pool replaces every connection older than the
    failure before lending them again."""

    @event.listens_for(engine.sync_engine, "connect")
    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and lends another (up to three tries).
            raise DisconnectionError(f"a pooled connection was dropped: {exc}") from exc


def _configure_sqlite(engine: AsyncEngine, *, durable: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: SQLAlchemy's statement machinery costs more than a BEGIN.
        driver: InlineConnection = conn.connection.driver_connection
        await_(driver.begin(writing=bool(conn.get_execution_options().get("ecrin_write"))))


async def use_write_ahead_log(engine: AsyncEngine, attempts: int = 50) -> None:
    """Put a SQLite database in WAL mode (a setting kept in the file, so once is enough).

    Switching needs the file to itself, and SQLite answers "locked" at once, without
    waiting, while another process's first transaction holds it: so try again a moment later.
    """
    for attempt in range(attempts):
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()  # outside any transaction, as SQLite wants
            driver = raw.driver_connection
            assert driver is not None
            try:
                cursor = await driver.execute("PRAGMA journal_mode=WAL")
                row = await cursor.fetchone()
                await cursor.close()
                if row is not None and str(row[0]).lower() == "wal":
                    return
            except sqlite3.OperationalError:
                if attempt == attempts - 1:
                    raise
        await asyncio.sleep(0.1)
    raise StorageError("SQLite refused to switch to write-ahead logging")


def _sqlstate(exc: DBAPIError) -> str | None:
    original = exc.orig
    for attribute in ("sqlstate", "pgcode"):
        code = getattr(original, attribute, None)
        if isinstance(code, str):
            return code
    return None


def map_database_error(exc: BaseException) -> EcrinError:
    """The core error for a driver or SQLAlchemy error (the caller chains `from exc`)."""
    if isinstance(exc, IntegrityError):
        return Conflict("the change conflicts with existing data")
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:  # dropped by the server (a restart): the pool renews
            return Unavailable("the connection to the database was lost; retry")
        state = _sqlstate(exc)
        if state in _RETRYABLE_SQLSTATES:
            return Unavailable(f"database busy: {_RETRYABLE_SQLSTATES[state]}; retry")
        if state is not None and state.startswith("22"):  # data exception: too long, bad value
            return BadRequest("a value does not fit the database")
        if "database is locked" in str(exc.orig):  # SQLite: busy_timeout ran out
            return Unavailable("database busy: another process holds the write lock; retry")
        return StorageError(f"database error: {type(exc.orig).__name__}")
    if isinstance(exc, PoolTimeout | TimeoutError):
        return Unavailable("no database connection became free in time; retry")
    if "database is locked" in str(exc):  # SQLite, straight from the driver
        return Unavailable("database busy: another process holds the write lock; retry")
    return StorageError(f"database unreachable: {type(exc).__name__}")


# What `database_errors` translates; Ecrin's own errors are none of these.
DATABASE_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError, TimeoutError)


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate foreign errors raised inside the block; Ecrin's own errors pass through."""
    try:
        yield
    except DATABASE_ERRORS as exc:
        raise map_database_error(exc) from exc
