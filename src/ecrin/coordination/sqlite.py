"""Coordination through a small SQLite file: the processes of one host, with no server to run.

`ecrin serve --workers N` without `redis_url` uses it, at `<data_dir>/coordination.sqlite3`.
The file is a database of its own, never the metadata database: coordination state is not
user data, so it runs in WAL mode with `synchronous=NORMAL` (a power cut may lose the last
few changes, which costs at most a credential checked against the database once more or a
lease taken again; it never corrupts the file).

- Generations are rows name → value; `advance` is one `INSERT … ON CONFLICT DO UPDATE …
  RETURNING`, so an advance is visible to every process as soon as it returns.
- Event windows are rows (key, at), counted through an index on (key, at); recording one
  drops that key's events older than the window, and a sweep drops every row whose window
  has passed in real time, so forgotten keys do not pile up.
- Leases are rows (name, token, expires_at in real time): taken only if absent or expired,
  renewed or released only with the token.
- Broadcast is a table of messages with an increasing id: a subscriber remembers the id
  current when it subscribed and polls for later ones every `POLL_INTERVAL` seconds. Messages
  are dropped `MESSAGE_RETENTION` seconds after they were published. They live in a file of
  their own, `coordination-messages.sqlite3` beside the first, attached to the same
  connection as `bus`: every group commit publishes, and the state file must not change
  with each (see below).

`read` is what every authenticated request asks (a login's credentials generation and its
failed logins). A process keeps what it read, and answers from it while the state file is
unchanged: `PRAGMA data_version` tells whether another connection committed to it since, and
this process forgets what it kept when it writes itself. Event counts only fall as their
window slides, so the event times are kept and counted again for each later `since`. Reading
the file instead had cost each request of a worker ~45 µs of CPU, and ~120 µs while the
other workers were writing (their commits invalidate its page cache).

Every statement takes microseconds, so each call runs on the event loop, except when another
process holds the write lock: then the call is run again on a thread that waits for the lock
(`busy_timeout`), and this process's other calls wait behind it. Only one process writes at a
time: fine for the few writes coordination makes (an advance per password change, an event
per wrong password, a lease per chunked-upload assembly or housekeeping round).

Errors: `sqlite3.Error` and OSError are mapped to `Unavailable` here, nowhere else.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ecrin.coordination.protocol import Lease, Reading
from ecrin.core.errors import Unavailable

T = TypeVar("T")

FILE_NAME = "coordination.sqlite3"
MESSAGES_SUFFIX = "-messages"  # coordination.sqlite3 -> coordination-messages.sqlite3
BUSY_TIMEOUT_MS = 10_000  # how long a call waits for another process's write lock
POLL_INTERVAL = 0.1  # seconds between a subscriber's looks for new messages
MESSAGE_RETENTION = 60.0  # seconds a published message stays for subscribers that lag
SWEEP_INTERVAL = 30.0  # seconds between sweeps of expired events, leases and messages
MAX_KEPT_READINGS = 4096  # (generations, events) asked in `read`, kept per process

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    name TEXT PRIMARY KEY, value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (key TEXT NOT NULL, at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_key ON events (key, at);
CREATE INDEX IF NOT EXISTS events_by_expiry ON events (expires_at);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
"""
_BUS_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus.messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    body TEXT NOT NULL,
    published_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS bus.messages_by_channel ON messages (channel, id);
DROP TABLE IF EXISTS main.messages;  -- where earlier versions kept them
"""


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise Unavailable(
            f"the coordination file is unusable ({type(exc).__name__}: {exc})"
        ) from exc


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _generation(connection: sqlite3.Connection, name: str) -> int:
    row = connection.execute("SELECT value FROM generations WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row is not None else 0


def _count_events(connection: sqlite3.Connection, key: str, since: float) -> int:
    row = connection.execute(
        "SELECT count(*) FROM events WHERE key = ? AND at > ?", (key, since)
    ).fetchone()
    return int(row[0])


@dataclass(frozen=True, slots=True)
class _Kept:
    """A `read` answered from the file: its generations and each key's event times."""

    since: float
    generations: tuple[int, ...]
    event_times: tuple[tuple[float, ...], ...]  # after `since`

    @classmethod
    def read(
        cls,
        connection: sqlite3.Connection,
        generations: Sequence[str],
        events: Sequence[str],
        since: float,
    ) -> _Kept:
        connection.execute("BEGIN")  # one snapshot for every statement
        try:
            return cls(
                since,
                tuple(_generation(connection, name) for name in generations),
                tuple(
                    tuple(
                        at
                        for (at,) in connection.execute(
                            "SELECT at FROM events WHERE key = ? AND at > ?", (key, since)
                        )
                    )
                    for key in events
                ),
            )
        finally:
            connection.execute("COMMIT")

    def reading(self, since: float) -> Reading:
        """What the file would answer for `since` (no earlier than `self.since`)."""
        counts = tuple(sum(at > since for at in times) for times in self.event_times)
        return Reading(self.generations, counts)


def _transaction(
    connection: sqlite3.Connection, statements: list[tuple[str, tuple[object, ...]]]
) -> None:
    """Run `statements` as one write transaction (or none of them)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for sql, parameters in statements:
            connection.execute(sql, parameters)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


class SQLiteCoordination:
    def __init__(self, path: Path, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._now = wall_clock  # real time, shared by every process of the host
        self._connection: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()  # one call at a time on the connection
        self._last_sweep = 0.0
        self._kept: dict[tuple[tuple[str, ...], tuple[str, ...]], _Kept] = {}
        self._data_version = -1  # the state file's, when `_kept` was last known valid

    @property
    def path(self) -> Path:
        return self._path

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            try:
                connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.executescript(_SCHEMA)
                messages = self._path.with_name(self._path.stem + MESSAGES_SUFFIX + ".sqlite3")
                connection.execute("ATTACH DATABASE ? AS bus", (str(messages),))
                connection.execute("PRAGMA bus.journal_mode=WAL")
                connection.execute("PRAGMA bus.synchronous=NORMAL")
                connection.executescript(_BUS_SCHEMA)
                connection.execute("PRAGMA busy_timeout=0")
            except BaseException:
                connection.close()
                raise
            return connection

        with _sqlite_errors():
            self._connection = await asyncio.to_thread(connect)

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on the loop; on a thread waiting for the write lock if another process has it.

        `work` must leave no transaction open and change nothing when it fails, so that it
        can run again.
        """
        await self._lock.acquire()
        release = True
        try:
            connection = self._connection
            if connection is None:
                raise Unavailable("the coordination file is not open")
            with _sqlite_errors():
                try:
                    return work(connection)
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                waiting = asyncio.ensure_future(asyncio.to_thread(self._waiting, connection, work))
                try:
                    return await asyncio.shield(waiting)
                except asyncio.CancelledError:
                    if not waiting.done():  # the thread still uses the connection: wait for it
                        release = False
                        waiting.add_done_callback(self._release_after)
                    raise
        finally:
            if release:
                self._lock.release()

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`_call` for work that changes the state file: this process's own commits leave
        its `data_version` as it was, so what `read` kept is forgotten here."""

        def write(connection: sqlite3.Connection) -> T:
            try:
                return work(connection)
            finally:
                self._kept.clear()

        return await self._call(write)

    def _release_after(self, waiting: asyncio.Future[Any]) -> None:
        if not waiting.cancelled():
            waiting.exception()  # retrieved: nobody awaits it any more
        self._lock.release()

    @staticmethod
    def _waiting(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            return work(connection)
        finally:
            connection.execute("PRAGMA busy_timeout=0")

    def _sweeps(self, now: float) -> list[tuple[str, tuple[object, ...]]]:
        """The statements dropping what has expired everywhere, every SWEEP_INTERVAL."""
        if now - self._last_sweep < SWEEP_INTERVAL:
            return []
        self._last_sweep = now
        return [
            ("DELETE FROM events WHERE expires_at < ?", (now,)),
            ("DELETE FROM leases WHERE expires_at <= ?", (now,)),
            ("DELETE FROM bus.messages WHERE published_at < ?", (now - MESSAGE_RETENTION,)),
        ]

    # --- generations ---------------------------------------------------------------------

    async def generation(self, name: str) -> int:
        return await self._call(lambda connection: _generation(connection, name))

    async def advance(self, name: str) -> int:
        def advance(connection: sqlite3.Connection) -> int:
            rows = connection.execute(
                "INSERT INTO generations (name, value) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                (name,),
            ).fetchall()  # every row fetched: the statement ends and commits
            return int(rows[0][0])

        return await self._write(advance)

    # --- event windows -------------------------------------------------------------------

    async def count_events(self, key: str, since: float) -> int:
        return await self._call(lambda connection: _count_events(connection, key, since))

    async def read(
        self, generations: Sequence[str], events: Sequence[str], since: float
    ) -> Reading:
        asked = (tuple(generations), tuple(events))

        def read(connection: sqlite3.Connection) -> Reading:
            version = connection.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:  # another process wrote
                self._kept.clear()
                self._data_version = version
            kept = self._kept.get(asked)
            if kept is None or since < kept.since:
                if len(self._kept) >= MAX_KEPT_READINGS:
                    self._kept.clear()
                kept = self._kept[asked] = _Kept.read(connection, *asked, since)
            return kept.reading(since)

        return await self._call(read)

    async def record_event(self, key: str, at: float, keep_for: float) -> None:
        now = self._now()
        statements = [
            (
                "INSERT INTO events (key, at, expires_at) VALUES (?, ?, ?)",
                (key, at, now + keep_for),
            ),
            ("DELETE FROM events WHERE key = ? AND at < ?", (key, at - keep_for)),
            *self._sweeps(now),
        ]
        await self._write(lambda connection: _transaction(connection, statements))

    async def forget_events(self, key: str) -> None:
        await self._write(
            lambda connection: connection.execute(
                "DELETE FROM events WHERE key = ?", (key,)
            ).close()
        )

    # --- leases --------------------------------------------------------------------------

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        token = secrets.token_hex(16)

        def acquire(connection: sqlite3.Connection) -> bool:
            now = self._now()
            rows = connection.execute(
                "INSERT INTO leases (name, token, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET token = excluded.token, "
                "expires_at = excluded.expires_at WHERE leases.expires_at <= ? RETURNING token",
                (name, token, now + ttl, now),
            ).fetchall()
            return bool(rows)

        return Lease(name, token) if await self._call(acquire) else None

    async def renew(self, lease: Lease, ttl: float) -> bool:
        def renew(connection: sqlite3.Connection) -> bool:
            now = self._now()
            cursor = connection.execute(
                "UPDATE leases SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ?",
                (now + ttl, lease.name, lease.token, now),
            )
            return cursor.rowcount == 1

        return await self._call(renew)

    async def release(self, lease: Lease) -> None:
        await self._call(
            lambda connection: connection.execute(
                "DELETE FROM leases WHERE name = ? AND token = ?", (lease.name, lease.token)
            ).close()
        )

    async def is_held(self, name: str) -> bool:
        def held(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT 1 FROM leases WHERE name = ? AND expires_at > ?", (name, self._now())
            ).fetchone()
            return row is not None

        return await self._call(held)

    # --- broadcast -----------------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        now = self._now()
        insert = (
            "INSERT INTO bus.messages (channel, body, published_at) VALUES (?, ?, ?)",
            (channel, message, now),
        )
        sweeps = self._sweeps(now)
        if sweeps:  # they change the state file too
            await self._write(lambda connection: _transaction(connection, [insert, *sweeps]))
        else:  # only the messages file is written (and locked)
            await self._call(lambda connection: connection.execute(*insert).close())

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        def last_id(connection: sqlite3.Connection) -> int:
            row = connection.execute("SELECT max(id) FROM bus.messages").fetchone()
            return int(row[0] or 0)

        yield self._messages(channel, await self._call(last_id))

    async def _messages(self, channel: str, after: int) -> AsyncIterator[str]:
        def later(connection: sqlite3.Connection) -> list[tuple[int, str]]:
            return connection.execute(
                "SELECT id, body FROM bus.messages WHERE channel = ? AND id > ? "
                "ORDER BY id LIMIT 1000",
                (channel, after),
            ).fetchall()

        while True:
            rows = await self._call(later)
            if not rows:
                await asyncio.sleep(POLL_INTERVAL)
                continue
            after = rows[-1][0]
            for _, body in rows:
                yield body
