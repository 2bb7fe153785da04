"""Writers of one SQLite file, in every process, queue on a lock file before BEGIN IMMEDIATE.

SQLite's write lock is taken by trying: a writer that finds it held is refused at once and
must try again (`sqlite_inline` retries, a fraction of a millisecond apart at first, up to
5 ms). With several worker processes writing small files, the lock often sat free while the
other process's writers waited for their next try. Here a writer first takes an exclusive
`flock` on `<database>-writer`; if another holds it, a thread waits in the kernel, which
wakes it the moment the holder lets go, and the event loop runs on meanwhile. The write lock
then passes from process to process without a gap.

The lock file is advisory: a process that does not take it (the `sqlite3` shell, say) is
still kept out by SQLite's own lock, which every writer takes next.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

SUFFIX = "-writer"
# Threads that wait for the lock: their own pool, so a holder that never lets go cannot
# take the threads that COMMITs and file writes run on.
_waiters = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sqlite-write-queue")


class WriteQueue:
    """The queue of one database file. A turn is an open descriptor of the lock file that
    holds the lock; closing it ends the turn (and releases the lock, even mid-wait)."""

    def __init__(self, database: str) -> None:
        self.path = database + SUFFIX

    async def turn(self, *, within: float) -> int:
        """Wait for the lock (for `within` seconds at most, then "database is locked", as
        SQLite says it); the descriptor to give to `end`."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        waiting = asyncio.get_running_loop().run_in_executor(
            _waiters, fcntl.flock, fd, fcntl.LOCK_EX
        )
        try:
            await asyncio.wait_for(asyncio.shield(waiting), within)
        except BaseException as exc:
            # Cancelled or out of time: the thread may still get the lock; it is let go then.
            waiting.add_done_callback(lambda _: os.close(fd))
            if isinstance(exc, TimeoutError):
                raise sqlite3.OperationalError("database is locked") from exc
            raise
        return fd

    @staticmethod
    def end(fd: int) -> None:
        os.close(fd)


def queue_of(connection: sqlite3.Connection) -> WriteQueue | None:
    """The queue of the file `connection` has open; None for an in-memory database."""
    row = connection.execute("PRAGMA database_list").fetchone()
    return WriteQueue(row[2]) if row is not None and row[2] else None
