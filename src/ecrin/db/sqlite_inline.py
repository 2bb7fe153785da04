"""SQLite for SQLAlchemy's asyncio engine, run on the event loop except where it can wait.

aiosqlite runs every cursor(), execute(), fetchall() and close() as a job on a thread of its
own and wakes the event loop for each result: 3 or 4 thread hand-offs per statement, which cost
far more than the statements (a primary-key look-up takes microseconds). Here statements run
inline, on the loop's thread. What can wait does not block the loop: the COMMIT of a write
transaction, when it fsyncs, runs on a thread, and a writer waits for the writers of other
connections and processes in a queue (`write_queue.py`), on a thread too. Reads in WAL mode
never wait for writers.

The engine is SQLAlchemy's aiosqlite dialect, given this module instead of aiosqlite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)

from ecrin.db.write_queue import WriteQueue, queue_of

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another process's write lock


class InlineCursor:
    """An aiosqlite-shaped cursor whose coroutines finish without suspending."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """An aiosqlite-shaped connection over a `sqlite3.Connection` shared with one thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = connection  # None once closed
        self.writing = False  # inside a BEGIN IMMEDIATE transaction
        self._fsyncs: bool | None = None  # does COMMIT fsync (synchronous is not OFF)?
        self._queue = queue_of(connection)
        self._turn: int | None = None  # the write queue's lock, held from BEGIN to its end

    @property
    def raw(self) -> sqlite3.Connection:
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection

    def cursor(self) -> InlineCursor:
        return InlineCursor(self.raw.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)

    async def begin(self, *, writing: bool) -> None:
        """BEGIN a reader (DEFERRED: it waits for nobody in WAL mode) or a writer (IMMEDIATE).

        A writer first waits for its turn in the file's write queue, then takes SQLite's
        write lock. Should another program hold that lock outside the queue, it tries again
        every fraction of a millisecond, without blocking the event loop, for up to
        BUSY_TIMEOUT_MS in all. (SQLite's own busy handler sleeps in steps of up to 100 ms:
        with several worker processes writing small files, the lock sat free most of the
        time.)"""
        raw = self.raw
        if self.writing and raw.in_transaction:
            return  # begun here already (GroupCommit's batches): SQLAlchemy's joins it
        if not writing:
            # A read already begun on this connection (SqlMetadataStore's kept readers begin
            # here, not through SQLAlchemy): a Core statement run in it joins it.
            if not raw.in_transaction:
                raw.execute("BEGIN DEFERRED")
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
        if self._queue is not None:
            self._turn = await self._queue.turn(within=BUSY_TIMEOUT_MS / 1000)
        pause = 0.0002
        try:
            raw.execute("PRAGMA busy_timeout=0")
            try:
                while True:
                    try:
                        raw.execute("BEGIN IMMEDIATE")
                        break
                    except sqlite3.OperationalError as exc:
                        locked = "locked" in str(exc) and not raw.in_transaction
                        if not locked or loop.time() > deadline:
                            raise
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.005)
            finally:
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except BaseException:
            self._end_turn()
            raise
        self.writing = True

    def _end_turn(self) -> None:
        if self._turn is not None:
            WriteQueue.end(self._turn)
            self._turn = None

    async def commit(self) -> None:
        raw = self.raw
        if self._fsyncs is None:
            self._fsyncs = raw.execute("PRAGMA synchronous").fetchone()[0] != 0
        fsyncs, self.writing = self.writing and self._fsyncs, False
        turn, self._turn = self._turn, None

        def commit() -> None:
            try:
                raw.commit()
            finally:  # as soon as the COMMIT ends, even if its waiter was cancelled
                if turn is not None:
                    WriteQueue.end(turn)

        if fsyncs:
            await asyncio.to_thread(commit)
        else:
            commit()

    async def rollback(self) -> None:
        self.writing = False
        try:
            self.raw.rollback()
        finally:
            self._end_turn()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate(), e.g. for a connection it invalidated)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._end_turn()


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self._connection.raw.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.raw.isolation_level = value


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """What SQLAlchemy's aiosqlite dialect takes as its driver module."""

    __version__ = sqlite3.sqlite_version

    def __init__(self) -> None:
        super().__init__(self, sqlite3)  # type: ignore[arg-type]
        self.has_stop = True  # InlineConnection.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(sqlite3, name)  # the DBAPI's exception classes and constants

    def connect(self, *args: Any, **kwargs: Any) -> _AdaptedConnection:
        kwargs.pop("async_creator_fn", None)
        kwargs["check_same_thread"] = False  # a COMMIT that fsyncs runs on a thread
        connection = InlineConnection(sqlite3.connect(*args, **kwargs))
        return _AdaptedConnection(self, connection)  # type: ignore[arg-type]
