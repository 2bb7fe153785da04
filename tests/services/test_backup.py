"""`ecrin backup`: a folder the instance runs from, made while it runs; incremental; never a
half backup where a whole one was."""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from ecrin.app import EcrinApp, blob_store_at, create_app
from ecrin.cli_storage import backup_to
from ecrin.core.errors import BadRequest, Conflict, StorageError
from ecrin.core.paths import DavPath
from ecrin.db.sql import SqlMetadataStore
from ecrin.services.backup import DATABASE, LOCK, Backup
from ecrin.settings import Settings
from ecrin.storage.protocol import BlobStore
from tests.profile import scaleout_profile
from tests.support import PASSWORD, Dav

embedded_only = pytest.mark.skipif(scaleout_profile(), reason="backs up SQLite metadata")
BIG = 200_000  # past the size whose bytes stay in the database


@asynccontextmanager
async def instance_at(settings: Settings, data_dir: Path) -> AsyncIterator[tuple[EcrinApp, Dav]]:
    """An instance on `data_dir` with the settings of the one backed up (keys included)."""
    app = create_app(dataclasses.replace(settings, data_dir=data_dir))
    await app.runtime.open()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield app, Dav(c, "alice", PASSWORD)
    finally:
        await app.runtime.close()


@embedded_only
async def test_the_backup_runs_as_the_instance_did(
    app: EcrinApp, alice: Dav, settings: Settings, tmp_path: Path
) -> None:
    first, second, small = os.urandom(BIG), os.urandom(BIG), b"a few bytes"
    await alice.mkcol("docs")
    await alice.put("docs/report.bin", first)
    await alice.put("docs/report.bin", second)  # the first becomes a version
    await alice.put("docs/note.txt", small)
    await alice.put("gone.bin", os.urandom(BIG))
    await alice.delete("gone.bin")  # into the trash
    lines: list[str] = []

    result = await backup_to(settings, tmp_path / "backup", say=lines.append)

    assert result.blobs.failed == {} and result.attempts == 1
    assert result.blobs.copied == result.blobs.total >= 3  # the file, its version, the trash
    assert lines[0] == "copying the metadata"
    assert result.key_records == (result.blobs.total if settings.encryption else 0)
    assert sorted(os.listdir(tmp_path / "backup")) == sorted([LOCK, DATABASE, "blobs"])
    async with instance_at(settings, tmp_path / "backup") as (restored, dav):
        assert (await dav.get("docs/report.bin")).content == second
        assert (await dav.get("docs/note.txt")).content == small
        user = await restored.runtime.services.accounts.get_user("alice")
        node = await restored.runtime.services.files.stat(user, _path("docs/report.bin"))
        _, versions = await restored.runtime.services.versions.list_versions(user, node.id)
        assert len(versions) == 1
        version = versions[0]
        assert version.blob_id is not None
        kept = restored.runtime.services.files.send_blob(version.blob_id)
        assert b"".join([chunk async for chunk in kept]) == first
        assert [
            item.original_name for item in await restored.runtime.services.trash.items(user)
        ] == ["gone.bin"]
        report = await restored.runtime.services.consistency.check(verify_checksums=True)
        assert report.clean, report


@embedded_only
async def test_the_next_backup_copies_what_is_new_and_drops_what_is_gone(
    app: EcrinApp, alice: Dav, settings: Settings, tmp_path: Path
) -> None:
    await alice.put("kept.bin", os.urandom(BIG))
    await alice.put("gone.bin", os.urandom(BIG))
    first = await backup_to(settings, tmp_path / "backup")
    assert first.blobs.copied == 2
    user = await app.runtime.services.accounts.get_user("alice")
    await alice.delete("gone.bin")
    assert await app.runtime.services.trash.empty(user) == 1
    await alice.put("new.bin", os.urandom(BIG))

    second = await backup_to(settings, tmp_path / "backup")

    assert (second.blobs.copied, second.blobs.already_there, second.removed) == (1, 1, 1)
    blobs = blob_store_at(settings, f"file://{tmp_path / 'backup' / 'blobs'}")
    assert len([b async for b in blobs.list_blobs()]) == 2
    async with instance_at(settings, tmp_path / "backup") as (_, dav):
        await dav.get("new.bin")
        await dav.get("gone.bin", status=404)


class EmptiesTheTrashFirst:
    """The instance's blob store, but the trash is emptied just before the first read."""

    def __init__(self, inner: BlobStore, empty: Callable[[], Awaitable[int]]) -> None:
        self.inner = inner
        self.empty: Callable[[], Awaitable[int]] | None = empty

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        if self.empty is not None:
            empty, self.empty = self.empty, None
            assert await empty() == 1
        async for chunk in self.inner.read(blob_id, start, end):
            yield chunk


@embedded_only
async def test_a_blob_deleted_meanwhile_starts_the_backup_again(
    app: EcrinApp, alice: Dav, settings: Settings, tmp_path: Path
) -> None:
    """The trash emptied after the metadata was copied: that copy needs a blob the instance
    no longer has, so the backup takes a new copy of the metadata."""
    await alice.put("gone.bin", os.urandom(BIG))
    await alice.delete("gone.bin")
    await alice.put("kept.bin", os.urandom(BIG))
    user = await app.runtime.services.accounts.get_user("alice")
    live = blob_store_at(settings, settings.effective_storage_url)
    copies = blob_store_at(settings, f"file://{tmp_path / 'backup' / 'blobs'}")
    await live.open()
    await copies.open()
    lines: list[str] = []
    backup = Backup(
        app.runtime.metadata,
        cast(BlobStore, EmptiesTheTrashFirst(live, lambda: app.runtime.services.trash.empty(user))),
        tmp_path / "backup",
        copies,
        open_copy=lambda path: SqlMetadataStore(f"sqlite:///{path}"),
    )

    result = await backup.run(jobs=1, say=lines.append)

    assert result.attempts == 2, lines
    assert "1 blobs were deleted meanwhile: starting again" in lines
    assert (result.blobs.total, result.blobs.failed) == (1, {})
    await copies.close()
    await live.close()


@embedded_only
async def test_a_blob_the_instance_lost_is_kept_from_the_backup_or_fails_it(
    app: EcrinApp, alice: Dav, settings: Settings, tmp_path: Path
) -> None:
    """A blob lost from the instance's disk, still in its metadata: the backup keeps the
    copy it already has; if it has none, it fails and leaves the previous backup alone."""
    user = await app.runtime.services.accounts.get_user("alice")
    live = blob_store_at(settings, settings.effective_storage_url)

    async def lose(name: str) -> None:
        node = await app.runtime.services.files.stat(user, _path(name))
        assert node.blob_id is not None
        await live.delete(node.blob_id)

    await alice.put("a.bin", os.urandom(BIG))
    await backup_to(settings, tmp_path / "backup")
    await lose("a.bin")
    kept = await backup_to(settings, tmp_path / "backup")
    assert (kept.blobs.already_there, kept.blobs.failed, kept.removed) == (1, {}, 0)
    previous = (tmp_path / "backup" / DATABASE).read_bytes()

    await alice.put("b.bin", os.urandom(BIG))
    await lose("b.bin")
    with pytest.raises(
        StorageError, match="1 blobs that files refer to are missing from the instance"
    ):
        await backup_to(settings, tmp_path / "backup")

    assert (tmp_path / "backup" / DATABASE).read_bytes() == previous
    assert sorted(os.listdir(tmp_path / "backup")) == sorted([LOCK, DATABASE, "blobs"])


@embedded_only
async def test_the_instance_folders_and_a_busy_backup_are_refused(
    app: EcrinApp, settings: Settings, tmp_path: Path
) -> None:
    for own in (settings.data_dir, settings.data_dir / "blobs"):
        with pytest.raises(BadRequest, match="where the instance keeps its data"):
            await backup_to(settings, own)
    (tmp_path / "backup").mkdir()
    held = os.open(tmp_path / "backup" / LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="another backup"):
            await backup_to(settings, tmp_path / "backup")
    finally:
        os.close(held)


@pytest.mark.skipif(not scaleout_profile(), reason="PostgreSQL metadata")
async def test_postgresql_is_left_to_its_own_tools(
    app: EcrinApp, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(BadRequest, match="pg_dump"):
        await backup_to(settings, tmp_path / "backup")


def _path(path: str) -> DavPath:
    return DavPath.parse(path)
