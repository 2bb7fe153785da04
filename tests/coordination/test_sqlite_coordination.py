"""What the SQLite coordination adds to the conformance suite: other processes, their write
lock, and the file's housekeeping."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.coordination import sqlite as coordination_sqlite
from ecrin.coordination.sqlite import SQLiteCoordination
from ecrin.core.errors import Unavailable


@pytest.fixture
async def coordination(tmp_path: Path) -> AsyncIterator[SQLiteCoordination]:
    handle = SQLiteCoordination(tmp_path / "coordination.sqlite3")
    await handle.open()
    try:
        yield handle
    finally:
        await handle.close()


def _other_process(path: Path, code: str) -> str:
    """Run `code` (with `c`, an open SQLiteCoordination on `path`) in a fresh interpreter."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from ecrin.coordination.sqlite import SQLiteCoordination\n"
        "async def main():\n"
        f"    c = SQLiteCoordination(Path({str(path)!r}))\n"
        "    await c.open()\n"
        "    try:\n" + "".join(f"        {line}\n" for line in code.splitlines()) + "    finally:\n"
        "        await c.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_another_process_sees_and_moves_the_same_state(
    coordination: SQLiteCoordination,
) -> None:
    await coordination.advance("credentials:alice")
    lease = await coordination.acquire("assembly", ttl=30.0)
    assert lease is not None
    async with coordination.subscribe("changes") as messages:
        out = _other_process(
            coordination.path,
            "print(await c.generation('credentials:alice'))\n"
            "print(await c.advance('credentials:alice'))\n"
            "print(await c.acquire('assembly', ttl=30.0))\n"
            "await c.publish('changes', 'from the other process')",
        )
        assert out.split("\n")[:3] == ["1", "2", "None"]
        assert await coordination.generation("credentials:alice") == 2
        assert await asyncio.wait_for(anext(messages), 10) == "from the other process"


async def test_a_call_waits_on_a_thread_while_another_process_holds_the_write_lock(
    coordination: SQLiteCoordination,
) -> None:
    other = sqlite3.connect(coordination.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the other process is writing
        advancing = asyncio.create_task(coordination.advance("g"))
        await asyncio.sleep(0.2)
        assert not advancing.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(advancing, 10) == 1
        assert await coordination.generation("g") == 1  # the connection is usable again
    finally:
        other.close()


async def test_a_write_lock_held_too_long_gives_unavailable(
    coordination: SQLiteCoordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coordination_sqlite, "BUSY_TIMEOUT_MS", 100)
    other = sqlite3.connect(coordination.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable, match="coordination file"):
            await coordination.record_event("k", 1.0, keep_for=60.0)
        other.execute("ROLLBACK")
    finally:
        other.close()
    await coordination.record_event("k", 1.0, keep_for=60.0)
    assert await coordination.count_events("k", since=0.0) == 1


async def test_a_cancelled_wait_keeps_the_connection_until_its_thread_ends(
    coordination: SQLiteCoordination,
) -> None:
    other = sqlite3.connect(coordination.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        advancing = asyncio.create_task(coordination.advance("g"))
        await asyncio.sleep(0.1)
        advancing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await advancing
        reading = asyncio.create_task(coordination.generation("g"))
        await asyncio.sleep(0.1)
        assert not reading.done()  # behind the thread, not beside it on the connection
        other.execute("COMMIT")
        assert await asyncio.wait_for(reading, 10) == 1  # the cancelled advance still landed
    finally:
        other.close()


async def test_expired_rows_are_swept(tmp_path: Path) -> None:
    now = [1_000.0]
    coordination = SQLiteCoordination(tmp_path / "c.sqlite3", wall_clock=lambda: now[0])
    await coordination.open()
    try:
        await coordination.record_event("old", 5.0, keep_for=10.0)
        assert await coordination.acquire("crashed", ttl=10.0) is not None
        await coordination.publish("changes", "old news")
        now[0] += 100.0
        await coordination.record_event("new", 6.0, keep_for=10.0)  # a sweep is due
        counts = sqlite3.connect(tmp_path / "c.sqlite3")
        try:
            counts.execute("ATTACH DATABASE ? AS bus", (str(tmp_path / "c-messages.sqlite3"),))
            for table, left in (("events", 1), ("leases", 0), ("bus.messages", 0)):
                assert counts.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == left
        finally:
            counts.close()
    finally:
        await coordination.close()


async def test_messages_leave_the_state_file_unchanged_for_other_processes_reads(
    coordination: SQLiteCoordination,
) -> None:
    """What `read` keeps stays valid while only messages are published."""
    other = sqlite3.connect(coordination.path, isolation_level=None)
    try:
        version = other.execute("PRAGMA data_version").fetchone()[0]
        await coordination.publish("changes", "a group commit's changes")
        assert other.execute("PRAGMA data_version").fetchone()[0] == version
        await coordination.record_event("network:x", 1.0, keep_for=60.0)
        assert other.execute("PRAGMA data_version").fetchone()[0] != version
    finally:
        other.close()


async def test_a_kept_reading_is_not_used_after_a_write_by_another_connection(
    coordination: SQLiteCoordination,
) -> None:
    assert (await coordination.read(["g"], ["k"], 0.0)).generations == (0,)
    other = sqlite3.connect(coordination.path, isolation_level=None)
    try:  # a process that writes with no Ecrin code at all
        other.execute("INSERT INTO generations (name, value) VALUES ('g', 7)")
        other.execute("INSERT INTO events (key, at, expires_at) VALUES ('k', 5.0, 1e12)")
    finally:
        other.close()
    reading = await coordination.read(["g"], ["k"], 0.0)
    assert (reading.generations, reading.event_counts) == ((7,), (1,))


async def test_an_unusable_file_fails_at_open_with_unavailable(tmp_path: Path) -> None:
    (tmp_path / "c.sqlite3").write_bytes(b"not a database, not at all" * 100)
    with pytest.raises(Unavailable, match="coordination file"):
        await SQLiteCoordination(tmp_path / "c.sqlite3").open()
