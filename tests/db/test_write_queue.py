"""Writers of one SQLite file queue on `<database>-writer` before they take SQLite's lock:
a writer of another process holding it is waited for (the event loop runs on meanwhile),
and a wait given up lets go of the lock once the kernel grants it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ecrin.db.sql import SqlMetadataStore
from ecrin.db.sqlite_inline import InlineConnection
from ecrin.db.write_queue import SUFFIX, WriteQueue

# Another process in the queue: takes the lock, says so, lets go when its stdin closes.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
sys.stdin.read()
"""


@contextmanager
def held_by_another_process(lock_file: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        yield holder
    finally:
        holder.kill()
        holder.communicate()


def let_go(holder: subprocess.Popen[str]) -> None:
    holder.communicate("")  # its stdin closes: it exits, and the kernel drops its lock


def is_free(lock_file: Path) -> bool:
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


async def until_free(lock_file: Path) -> bool:
    for _ in range(500):
        if is_free(lock_file):
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_writer_waits_its_turn_behind_another_process(tmp_path: Path) -> None:
    database = tmp_path / "ecrin.sqlite3"
    store = SqlMetadataStore(f"sqlite:///{database}")
    await store.open()
    try:
        with held_by_another_process(Path(f"{database}{SUFFIX}")) as holder:

            async def write() -> None:
                async with store.write() as tx:
                    await tx.insert_user("ana", "Ana", "hash", None, False, 1.0)

            writing = asyncio.create_task(write())
            for _ in range(20):  # the loop is not blocked while the writer waits
                await asyncio.sleep(0.01)
            assert not writing.done()
            async with store.read() as tx:  # and readers do not wait at all
                assert await tx.user_count() == 0
            let_go(holder)
            await writing
        async with store.read() as tx:
            assert [u.name for u in await tx.list_users()] == ["ana"]
        assert is_free(Path(f"{database}{SUFFIX}"))  # the turn ended with the commit
    finally:
        await store.close()


async def test_a_wait_given_up_lets_go_of_the_lock_it_gets_later(tmp_path: Path) -> None:
    lock_file = tmp_path / f"ecrin.sqlite3{SUFFIX}"
    queue = WriteQueue(str(tmp_path / "ecrin.sqlite3"))
    with held_by_another_process(lock_file) as holder:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await queue.turn(within=0.1)
        cancelled = asyncio.create_task(queue.turn(within=30))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        let_go(holder)
    # Both waiting threads got the lock after the holder left, and gave it back.
    assert await until_free(lock_file)
    turn = await queue.turn(within=1)
    assert not is_free(lock_file)
    WriteQueue.end(turn)
    assert is_free(lock_file)


class _SlowCommit(sqlite3.Connection):
    """A connection whose COMMIT waits for `go` (as a long fsync would)."""

    go = threading.Event()

    def commit(self) -> None:
        assert self.go.wait(10)
        super().commit()


async def test_a_cancelled_commit_keeps_its_turn_until_the_commit_ends(tmp_path: Path) -> None:
    database = tmp_path / "w.sqlite3"
    connection = InlineConnection(
        sqlite3.connect(database, factory=_SlowCommit, check_same_thread=False)
    )
    try:
        connection.raw.execute("PRAGMA journal_mode=WAL")
        await connection.begin(writing=True)
        connection.raw.execute("CREATE TABLE t (x)")
        committing = asyncio.create_task(connection.commit())
        await asyncio.sleep(0.05)  # on its thread, waiting for `go`
        committing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await committing
        # The COMMIT still runs: another writer let in now would find SQLite's lock taken.
        assert not is_free(Path(str(database) + SUFFIX))
        _SlowCommit.go.set()
        assert await until_free(Path(str(database) + SUFFIX))
        assert connection.raw.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        _SlowCommit.go.set()
        connection.stop()
