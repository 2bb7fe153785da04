"""Prepared statements give the same rows on SQLite's direct path as through SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from ecrin.db.prepared import Prepared, PreparedRunner
from ecrin.db.schema import users
from ecrin.db.sql import SqlMetadataStore
from tests.services.statements import counting

BY_NAME = Prepared(select(users).where(users.c.name == bindparam("name")))
PROMOTE = Prepared(update(users).where(users.c.name == bindparam("name")).values(is_admin=True))


async def test_sqlite_direct_rows_match_sqlalchemy_rows(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'ecrin.sqlite3'}", durable=False)
    await store.open()
    try:
        async with store.write() as tx:
            await tx.insert_user("ana", "Ana", "hash", None, False, 1.0)
        async with store.engine.connect() as conn, conn.begin():
            direct = await PreparedRunner.of(conn)
            through = PreparedRunner(conn, None)
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
    finally:
        await store.close()


async def test_sqlite_direct_errors_and_statements_look_like_sqlalchemy_ones(
    tmp_path: Path,
) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'ecrin.sqlite3'}", durable=False)
    await store.open()
    add = Prepared(
        insert(users).values(
            name=bindparam("name"), display_name="d", password_hash="h", created_at=1.0
        )
    )
    try:
        with counting(store.engine) as counter:
            async with store.engine.connect() as conn, conn.begin():
                direct = await PreparedRunner.of(conn)
                await direct.run(add, name="ana")
                with pytest.raises(IntegrityError):
                    await direct.run(add, name="ana")
        assert len(counter.statements) == 2
    finally:
        await store.close()
