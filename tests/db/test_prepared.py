"""Prepared statements give the same rows, counts and errors on the direct paths (sqlite3,
asyncpg) as through SQLAlchemy, inside the same transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from ecrin.db.prepared import Prepared, PreparedRunner
from ecrin.db.schema import users
from ecrin.db.sql import SqlMetadataStore
from ecrin.db.statements import properties_of
from tests.services.statements import counting

BY_NAME = Prepared(select(users).where(users.c.name == bindparam("name")))
NAMES = Prepared(select(users.c.name, users.c.is_admin).order_by(users.c.id), positional=True)
NAMES_AND_IDS = Prepared(select(users.c.name, users.c.id))
PROMOTE = Prepared(update(users).where(users.c.name == bindparam("name")).values(is_admin=True))
_ADD_USER = insert(users).values(
    name=bindparam("name"), display_name="d", password_hash="h", created_at=1.0
)
ADD = Prepared(_ADD_USER)
ADD_WITH_ID = Prepared(_ADD_USER, new_id=users.c.id)


async def test_direct_rows_match_sqlalchemy_rows(metadata_store: SqlMetadataStore) -> None:
    async with metadata_store.write() as tx:
        await tx.insert_user("ana", "Ana", "hash", None, False, 1.0)
    async with metadata_store.engine.connect() as conn, conn.begin():
        direct = await PreparedRunner.of(conn)
        through = PreparedRunner(conn, None)
        assert direct.direct and not through.direct
        assert await direct.run(PROMOTE, name="ana") == 1
        assert await direct.run(PROMOTE, name="nobody") == 0
        row = await direct.first(BY_NAME, name="ana")
        expected = await through.first(BY_NAME, name="ana")
        assert row is not None and expected is not None
        assert row._mapping == dict(expected._mapping)
        assert row.is_admin is True and row.name == "ana"
        assert await direct.first(BY_NAME, name="nobody") is None
        assert [r.name for r in await direct.all(BY_NAME, name="ana")] == ["ana"]
        await conn.execute(
            insert(users).values(name="bo", display_name="B", password_hash="h", created_at=2)
        )
        # Same transaction: the direct path sees SQLAlchemy's uncommitted insert.
        assert (await direct.first(BY_NAME, name="bo")) is not None
        assert [tuple(r) for r in await direct.all(NAMES)] == [("ana", True), ("bo", False)]
        # A statement whose parameter SQLAlchemy converts (a list of ids: an array or JSON).
        postgresql = not metadata_store.is_sqlite
        ids = [1, 2] if postgresql else "[1, 2]"
        assert await direct.all(properties_of(postgresql), ids=ids) == []


async def test_direct_statements_run_in_the_transaction(metadata_store: SqlMetadataStore) -> None:
    async with metadata_store.engine.connect() as conn:
        transaction = await conn.begin()
        direct = await PreparedRunner.of(conn)
        await direct.run(ADD, name="ana")  # the transaction's first statement
        assert await direct.first(BY_NAME, name="ana") is not None
        await transaction.rollback()
    async with metadata_store.read() as tx:
        assert await tx.user_by_name("ana") is None


async def test_direct_errors_and_statements_look_like_sqlalchemy_ones(
    metadata_store: SqlMetadataStore,
) -> None:
    with counting(metadata_store.engine) as counter:
        async with metadata_store.engine.connect() as conn, conn.begin():
            direct = await PreparedRunner.of(conn)
            await direct.run(ADD, name="ana")
            with pytest.raises(IntegrityError):
                await direct.run(ADD, name="ana")
    assert len(counter.statements) == 2


async def test_insert_returns_the_new_rows_id_on_every_path(
    metadata_store: SqlMetadataStore,
) -> None:
    async with metadata_store.engine.connect() as conn, conn.begin():
        direct = await PreparedRunner.of(conn)
        through = PreparedRunner(conn, None)
        # SQLite: no RETURNING clause (the id is its last rowid); elsewhere, RETURNING.
        assert "RETURNING" not in ADD_WITH_ID.for_sqlite().sql
        first = await direct.insert(ADD_WITH_ID, name="ana")
        second = await through.insert(ADD_WITH_ID, name="bo")
        third = await direct.insert(ADD_WITH_ID, name="cy")
        rows = {r.name: r.id for r in await direct.all(NAMES_AND_IDS)}
        assert rows == {"ana": first, "bo": second, "cy": third}
        assert len({first, second, third}) == 3
        with pytest.raises(IntegrityError):
            await direct.insert(ADD_WITH_ID, name="ana")
