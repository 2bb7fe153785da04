"""SQLite writers queued together share one COMMIT, and lose nothing of what they expect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event

from ecrin.core.errors import Conflict
from ecrin.db.group_commit import GroupCommit
from ecrin.db.sql import SqlMetadataStore, SqlTransaction


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'ecrin.sqlite3'}", durable=True)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def count_commits(store: SqlMetadataStore) -> list[int]:
    commits = [0]
    event.listen(
        store.engine.sync_engine, "commit", lambda _c: commits.__setitem__(0, commits[0] + 1)
    )
    return commits


async def add_user(group: GroupCommit, name: str, fail: bool = False) -> None:
    async with group.transaction() as conn:
        await SqlTransaction(conn).insert_user(name, name, "hash", None, False, 1.0)
        await asyncio.sleep(0)  # let the others queue up
        if fail:
            raise Conflict("this writer changes its mind")


async def user_names(store: SqlMetadataStore) -> set[str]:
    async with store.read() as tx:
        return {user.name for user in await tx.list_users()}


async def test_queued_writers_share_commits_and_all_land(store: SqlMetadataStore) -> None:
    group = GroupCommit(store.engine)
    commits = count_commits(store)
    await asyncio.gather(*(add_user(group, f"u{i}") for i in range(40)))
    assert await user_names(store) == {f"u{i}" for i in range(40)}
    assert 2 <= commits[0] < 40  # batches: at most 32 writers each


async def test_a_lone_writer_commits_before_it_returns(store: SqlMetadataStore) -> None:
    group = GroupCommit(store.engine)
    commits = count_commits(store)
    await add_user(group, "solo")
    assert commits[0] == 1
    assert "solo" in await user_names(store)


async def test_a_failing_writer_is_rolled_back_alone(store: SqlMetadataStore) -> None:
    group = GroupCommit(store.engine)
    results = await asyncio.gather(
        *(add_user(group, f"u{i}", fail=i % 3 == 0) for i in range(12)), return_exceptions=True
    )
    failed = {f"u{i}" for i, r in enumerate(results) if isinstance(r, Conflict)}
    assert failed == {f"u{i}" for i in range(0, 12, 3)}
    assert await user_names(store) == {f"u{i}" for i in range(12)} - failed


async def test_a_writer_conflicting_with_its_batch_fails_alone(store: SqlMetadataStore) -> None:
    group = GroupCommit(store.engine)
    results = await asyncio.gather(
        add_user(group, "same"),
        add_user(group, "same"),
        add_user(group, "other"),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType", "Conflict", "NoneType"]
    assert await user_names(store) == {"same", "other"}
