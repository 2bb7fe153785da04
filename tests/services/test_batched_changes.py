"""Uploads that share a group commit (SQLite, fsync on) leave their folders' change to it:
the ancestors are updated once a commit rather than once an upload, and every folder's size
and etag end as if each upload had done it alone, a recipient's mount point included, with
other writers in the same burst seeing the tree up to date."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from ecrin.app import EcrinApp
from ecrin.db.sql import SqlTransaction
from ecrin.settings import Settings
from tests.profile import scaleout_profile
from tests.sharing.helpers import share
from tests.support import Dav

FILES = 40


@pytest.fixture
async def settings(settings: Settings) -> Settings:
    # Durable commits run on a thread: writers queue meanwhile and share the next commit.
    return dataclasses.replace(settings, fsync=True)


async def size_of(dav: Dav, path: str) -> int:
    value = await dav.prop(path, "oc:size")
    assert value is not None
    return int(value)


async def test_a_burst_of_uploads_leaves_every_folder_right(
    app: EcrinApp, alice: Dav, bob: Dav, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("/a", "/a/b", "/c"):
        await alice.mkcol(folder)
    await share(alice, "/a/b", 0, shareWith="bob")
    await alice.put("/c/old.txt", b"zz", status=201)
    folders = ("/", "/a", "/a/b", "/c")
    before = {path: await alice.prop(path, "d:getetag") for path in folders}
    bob_before = await bob.prop("/", "d:getetag")

    climbs = [0]
    bump_ancestors = SqlTransaction.bump_ancestors

    async def counted(self: SqlTransaction, *args: Any, **kwargs: Any) -> Any:
        climbs[0] += 1
        return await bump_ancestors(self, *args, **kwargs)

    monkeypatch.setattr(SqlTransaction, "bump_ancestors", counted)
    await asyncio.gather(
        *(alice.put(f"/a/b/f{i}.txt", b"x" * i, status=201) for i in range(1, FILES + 1)),
        *(alice.put(f"/c/g{i}.txt", b"yy", status=201) for i in range(10)),
        alice.mkcol("/a/d"),  # a writer of another kind, amid the uploads
        alice.move("/c/old.txt", "/a/moved.txt", status=201),
    )

    listed = FILES * (FILES + 1) // 2
    assert await size_of(alice, "/a/b") == listed
    assert await size_of(alice, "/c") == 10 * 2
    assert await size_of(alice, "/a") == listed + 2
    assert await size_of(alice, "/") == listed + 11 * 2
    after = {path: await alice.prop(path, "d:getetag") for path in folders}
    assert all(after[path] != before[path] for path in folders), (before, after)
    assert await bob.prop("/", "d:getetag") != bob_before  # the folder holding bob's mount
    if not scaleout_profile():  # PostgreSQL has no group commit: one climb an upload there
        assert climbs[0] < FILES + 10, climbs
