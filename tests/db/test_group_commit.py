"""SQLite writers queued together share one COMMIT, and lose nothing of what they expect;
what some defer to their batch is settled once, before the commit and before other writers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import event

from ecrin.core.errors import Conflict
from ecrin.db.group_commit import Deferred, GroupCommit, Settle
from ecrin.db.prepared import PreparedRunner
from ecrin.db.sql import SqlMetadataStore, SqlTransaction
from ecrin.db.sqlite_inline import InlineConnection
from ecrin.services.quota import charge_usage


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'ecrin.sqlite3'}", durable=True)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def count_commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """COMMITs on SQLite's connections, however begun (SQLAlchemy's or the driver's own)."""
    commits = [0]
    commit = InlineConnection.commit

    async def counted(self: InlineConnection) -> None:
        commits[0] += 1
        await commit(self)

    monkeypatch.setattr(InlineConnection, "commit", counted)
    return commits


async def nothing_deferred(_prepared: PreparedRunner, changes: Deferred) -> None:
    raise AssertionError(f"no writer deferred anything, yet {changes} was settled")


Groups = Callable[..., GroupCommit]


@pytest.fixture
async def groups(store: SqlMetadataStore) -> AsyncIterator[Groups]:
    """GroupCommits on `store` (settling with `nothing_deferred` unless told), closed after."""
    made: list[GroupCommit] = []

    def make(settle: Settle = nothing_deferred) -> GroupCommit:
        made.append(GroupCommit(store.engine, settle))
        return made[-1]

    yield make
    for group in made:
        await group.close()


async def add_user(group: GroupCommit, name: str, fail: bool = False) -> None:
    async with group.transaction() as (prepared, _deferred):
        await SqlTransaction(prepared.connection, prepared=prepared).insert_user(
            name, name, "hash", None, False, 1.0
        )
        await asyncio.sleep(0)  # let the others queue up
        if fail:
            raise Conflict("this writer changes its mind")


async def add_user_deferring(group: GroupCommit, name: str) -> None:
    """`add_user`, by a writer that leaves a folder's change to its batch."""
    async with group.transaction(deferring=True) as (prepared, deferred):
        assert deferred is not None
        await SqlTransaction(prepared.connection, prepared=prepared).insert_user(
            name, name, "hash", None, False, 1.0
        )
        deferred.folders[1] = 1
        await asyncio.sleep(0)  # let the others queue up


async def user_names(store: SqlMetadataStore) -> set[str]:
    async with store.read() as tx:
        return {user.name for user in await tx.list_users()}


async def test_queued_writers_share_commits_and_all_land(
    store: SqlMetadataStore, groups: Groups, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = groups()
    commits = count_commits(monkeypatch)
    await asyncio.gather(*(add_user(group, f"u{i}") for i in range(40)))
    assert await user_names(store) == {f"u{i}" for i in range(40)}
    assert 2 <= commits[0] < 40  # batches: at most 32 writers each


async def test_a_lone_writer_commits_before_it_returns(
    store: SqlMetadataStore, groups: Groups, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = groups()
    commits = count_commits(monkeypatch)
    await add_user(group, "solo")
    assert commits[0] == 1
    assert "solo" in await user_names(store)


async def test_a_failing_writer_is_rolled_back_alone(
    store: SqlMetadataStore, groups: Groups
) -> None:
    group = groups()
    results = await asyncio.gather(
        *(add_user(group, f"u{i}", fail=i % 3 == 0) for i in range(12)), return_exceptions=True
    )
    failed = {f"u{i}" for i, r in enumerate(results) if isinstance(r, Conflict)}
    assert failed == {f"u{i}" for i in range(0, 12, 3)}
    assert await user_names(store) == {f"u{i}" for i in range(12)} - failed


async def test_a_writer_conflicting_with_its_batch_fails_alone(
    store: SqlMetadataStore, groups: Groups
) -> None:
    group = groups()
    results = await asyncio.gather(
        add_user(group, "same"),
        add_user(group, "same"),
        add_user(group, "other"),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType", "Conflict", "NoneType"]
    assert await user_names(store) == {"same", "other"}


async def test_deferred_changes_are_settled_once_before_others_write_and_commit(
    store: SqlMetadataStore, groups: Groups, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled: list[dict[int, int]] = []
    seen_by_writers: list[int] = []  # how many settlements a plain writer found done

    async def settle(_prepared: PreparedRunner, changes: Deferred) -> None:
        settled.append(dict(changes.folders))

    group = groups(settle)
    commits = count_commits(monkeypatch)

    async def deferring(folder: int, delta: int, fail: bool = False) -> None:
        async with group.transaction(deferring=True) as (_prepared, deferred):
            assert deferred is not None
            deferred.folders[folder] = deferred.folders.get(folder, 0) + delta
            await asyncio.sleep(0)
            if fail:
                raise Conflict("rolled back, and what it deferred with it")

    async def plain() -> None:
        async with group.transaction() as (_prepared, deferred):
            assert deferred is None
            seen_by_writers.append(len(settled))

    results = await asyncio.gather(
        deferring(1, 10),
        deferring(1, 5),
        deferring(2, 7),
        deferring(2, 1000, fail=True),
        plain(),
        deferring(1, 1),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["Conflict"] + ["NoneType"] * 2
    assert commits[0] == 1  # one batch
    assert settled == [{1: 15, 2: 7}, {1: 1}]  # before the plain writer, then before the commit
    assert seen_by_writers == [1]


async def test_a_failed_settlement_fails_the_whole_batch(
    store: SqlMetadataStore, groups: Groups
) -> None:
    async def settle(_prepared: PreparedRunner, _changes: Deferred) -> None:
        raise RuntimeError("the disk went away")

    group = groups(settle)
    results = await asyncio.gather(
        add_user_deferring(group, "a"),
        add_user_deferring(group, "b"),
        add_user(group, "c"),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results), results
    assert await user_names(store) == set()  # none of the batch's changes is kept


async def test_batches_keep_their_connection_until_one_fails(
    store: SqlMetadataStore, groups: Groups
) -> None:
    checkouts = [0]
    event.listen(
        store.engine.sync_engine, "checkout", lambda *_: checkouts.__setitem__(0, checkouts[0] + 1)
    )
    fail = [False]

    async def settle(_prepared: PreparedRunner, _changes: Deferred) -> None:
        if fail[0]:
            raise RuntimeError("the disk went away")

    group = groups(settle)
    for name in ("a", "b", "c"):
        await add_user_deferring(group, name)
    assert checkouts[0] == 1  # one connection, three batches
    fail[0] = True
    with pytest.raises(RuntimeError):
        await add_user_deferring(group, "d")
    fail[0] = False
    await add_user_deferring(group, "e")
    assert checkouts[0] == 2  # the failed batch's connection was not used again
    assert await user_names(store) == {"a", "b", "c", "e"}


def count_usage_updates(store: SqlMetadataStore) -> list[int]:
    updates = [0]

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE users SET used_bytes"):
            updates[0] += 1

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    return updates


async def upload(store: SqlMetadataStore, user_id: int, size: int) -> None:
    """What an upload does to its owner's usage, in a writer that defers what it may."""
    async with store.write(deferrable_changes=True) as tx:
        await charge_usage(tx, user_id, size, deferrable=True)
        await asyncio.sleep(0)  # let the others queue up


async def used_bytes(store: SqlMetadataStore, user_id: int) -> int:
    async with store.read() as tx:
        user = await tx.user_by_id(user_id)
    assert user is not None
    return user.used_bytes


async def test_usage_without_a_quota_is_added_once_a_batch(store: SqlMetadataStore) -> None:
    async with store.write() as tx:
        user = await tx.insert_user("u", "u", "hash", None, False, 1.0)
    updates = count_usage_updates(store)
    await asyncio.gather(*(upload(store, user.id, 100) for _ in range(10)))
    assert await used_bytes(store, user.id) == 1000
    # The first writer learns that the user has no quota; the others' bytes are summed.
    assert updates[0] == 2


async def test_a_quota_set_within_a_batch_binds_the_uploads_after_it(
    store: SqlMetadataStore,
) -> None:
    async with store.write() as tx:
        user = await tx.insert_user("u", "u", "hash", None, False, 1.0)

    async def set_quota() -> None:
        async with store.write() as tx:
            assert (await tx.user_by_id(user.id)).used_bytes == 200  # type: ignore[union-attr]
            await tx.set_quota(user.id, 250)

    results = await asyncio.gather(
        upload(store, user.id, 100),
        upload(store, user.id, 100),  # deferred: the batch knows there is no quota
        set_quota(),  # sees them: deferred bytes are added before other writers run
        upload(store, user.id, 100),  # over the new quota: the batch forgot it had none
        upload(store, user.id, 50),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["QuotaExceeded", "NoneType"]
    assert await used_bytes(store, user.id) == 250
