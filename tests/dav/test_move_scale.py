"""MOVE costs O(depth), not O(descendants): a folder is one row that changes parent.

The SQL statements a MOVE runs, and the rows its writes touch, are counted with a
SQLAlchemy event listener, for a folder with 2,000 descendants and one with 20: they are
the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event

from ecrin.app import EcrinApp
from ecrin.core.model import NodeKind
from ecrin.core.paths import DavPath
from tests.support import Dav, hrefs


@dataclass
class SqlCount:
    statements: int = 0
    rows_written: int = 0


@contextmanager
def counting_sql(app: EcrinApp) -> Iterator[SqlCount]:
    engine = app.runtime.metadata.engine.sync_engine
    count = SqlCount()

    def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        count.statements += 1
        if not statement.lstrip().upper().startswith(("SELECT", "WITH", "BEGIN", "PRAGMA")):
            count.rows_written += max(cursor.rowcount, 0)

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield count
    finally:
        event.remove(engine, "after_cursor_execute", after)


async def populate(app: EcrinApp, alice: Dav, folder: str, subfolders: int, files: int) -> int:
    """Fill a new folder with subfolders of empty files, in one transaction (fast setup)."""
    await alice.mkcol(folder)
    services = app.runtime.services
    user = await services.accounts.get_user("alice")
    top = await services.files.lookup(user, DavPath.parse(folder))
    assert top is not None
    now = services.clock.now()
    async with app.runtime.metadata.write() as tx:
        for s in range(subfolders):
            sub = await tx.insert_node(
                parent_id=top.id,
                owner_id=user.id,
                name=f"sub-{s:02d}",
                kind=NodeKind.FOLDER,
                size=0,
                mtime=now,
                now=now,
            )
            for f in range(files):
                await tx.insert_node(
                    parent_id=sub.id,
                    owner_id=user.id,
                    name=f"file-{f:03d}.txt",
                    kind=NodeKind.FILE,
                    size=0,
                    mtime=now,
                    now=now,
                )
    return subfolders * (files + 1)


async def test_move_of_a_folder_costs_the_same_whatever_lies_below(
    app: EcrinApp, alice: Dav
) -> None:
    assert await populate(app, alice, "/small", subfolders=2, files=9) == 20
    assert await populate(app, alice, "/big", subfolders=20, files=99) == 2000
    await alice.mkcol("/warm-up")
    await alice.mkcol("/target")
    await alice.move("/warm-up", "/target/warm-up", status=201)

    with counting_sql(app) as small:
        await alice.move("/small", "/target/small", status=201)
    with counting_sql(app) as big:
        await alice.move("/big", "/target/big", status=201)

    assert small.statements > 0 and small.rows_written > 0
    assert big.statements == small.statements
    assert big.rows_written == small.rows_written
    assert small.rows_written < 20, "a move should write a handful of rows, not the subtree"

    # Everything below came along.
    await alice.propfind("/big", status=404)
    listing = hrefs(await alice.propfind("/target/big/sub-19"))
    assert len(listing) == 1 + 99
    assert listing[-1] == "/remote.php/dav/files/alice/target/big/sub-19/file-098.txt"
    await alice.get("/target/big/sub-07/file-042.txt")


async def test_rename_in_place_costs_the_same_too(app: EcrinApp, alice: Dav) -> None:
    await populate(app, alice, "/small", subfolders=2, files=9)
    await populate(app, alice, "/big", subfolders=20, files=99)
    await alice.mkcol("/warm-up")
    await alice.move("/warm-up", "/warmed-up", status=201)
    with counting_sql(app) as small:
        await alice.move("/small", "/small-renamed", status=201)
    with counting_sql(app) as big:
        await alice.move("/big", "/big-renamed", status=201)
    assert (big.statements, big.rows_written) == (small.statements, small.rows_written)
    await alice.get("/big-renamed/sub-00/file-000.txt")
