"""Small files keep their bytes in their blob's row, committed with the write; larger ones,
and every file when the setting is 0 or encryption is on, go to the blob store."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecrin.app import EcrinApp, create_app
from ecrin.core.errors import BadRequest
from ecrin.core.paths import DavPath
from ecrin.settings import Settings
from tests.support import PASSWORD, Dav


def inline_limit(app: EcrinApp) -> int:
    limit = app.runtime.settings.effective_inline_max_bytes
    if not limit:
        pytest.skip("this profile keeps no contents in the database (encryption is on)")
    return limit


async def kept_in_database(app: EcrinApp) -> set[str]:
    async with app.runtime.metadata.read() as tx:
        return await tx.inline_blob_ids()


async def blob_of(app: EcrinApp, path: str) -> str:
    user = await app.runtime.services.accounts.get_user("alice")
    node = await app.runtime.services.files.lookup(user, DavPath.parse(path))
    assert node is not None and node.blob_id is not None
    return node.blob_id


async def test_small_files_blob_ids_come_in_runs_that_share_a_prefix(
    app: EcrinApp, alice: Dav
) -> None:
    # Neighbouring ids keep the database's id indexes growing in place (storage/blob_ids.py).
    inline_limit(app)
    for name in ("a", "b", "c"):
        await alice.put(f"/{name}.txt", b"small", status=201)
    ids = [await blob_of(app, f"/{name}.txt") for name in ("a", "b", "c")]
    assert len(set(ids)) == 3 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len({i[:4] for i in ids}) == 1
    assert ids[0] in await kept_in_database(app)


async def test_small_files_live_in_the_database_and_read_back_whole_and_in_ranges(
    app: EcrinApp, alice: Dav
) -> None:
    limit = inline_limit(app)
    small, large = bytes(range(256)) * (limit // 256), b"L" * (limit + 1)
    await alice.put("/small.bin", small, status=201)
    await alice.put("/large.bin", large, status=201)
    await alice.put("/empty.txt", b"", status=201)
    small_id, large_id = await blob_of(app, "/small.bin"), await blob_of(app, "/large.bin")
    inline = await kept_in_database(app)
    assert small_id in inline and large_id not in inline
    assert not await app.runtime.blobs.exists(small_id)  # nothing in the store
    assert await app.runtime.blobs.exists(large_id)

    assert (await alice.get("/small.bin")).content == small
    assert (await alice.get("/empty.txt")).content == b""
    ranged = await alice.get("/small.bin", status=206, Range="bytes=10-19")
    assert ranged.content == small[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(small)}"
    head = await alice.request("HEAD", "/small.bin", status=200)
    assert head.headers["content-length"] == str(len(small)) and head.content == b""
    # What HEAD opens: the node, without the bytes it would not send.
    user = await app.runtime.services.accounts.get_user("alice")
    files = app.runtime.services.files
    assert (await files.open(user, DavPath.parse("/small.bin"))).content == small
    assert (await files.open(user, DavPath.parse("/small.bin"), contents=False)).content is None


async def test_copies_share_the_row_and_the_last_reference_takes_the_bytes_away(
    app: EcrinApp, alice: Dav
) -> None:
    inline_limit(app)
    await alice.put("/a.txt", b"shared bytes", status=201)
    await alice.copy("/a.txt", "/b.txt", status=201)
    blob_id = await blob_of(app, "/a.txt")
    assert await blob_of(app, "/b.txt") == blob_id
    await alice.delete("/a.txt")
    assert (await alice.get("/b.txt")).content == b"shared bytes"
    await alice.delete("/b.txt")
    await app.runtime.services.trash.empty(await app.runtime.services.accounts.get_user("alice"))
    assert blob_id not in await kept_in_database(app)
    async with app.runtime.metadata.read() as tx:
        assert await tx.blob_content(blob_id) is None


async def test_a_body_that_does_not_match_its_length_is_refused_and_leaves_nothing(
    app: EcrinApp, alice: Dav
) -> None:
    inline_limit(app)
    files = app.runtime.services.files
    user = await app.runtime.services.accounts.get_user("alice")
    before = await kept_in_database(app)

    async def body(*pieces: bytes) -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    path = DavPath.parse("/wrong.txt")
    with pytest.raises(BadRequest, match="longer than the 4 bytes"):
        await files.upload(user, path, body(b"abc", b"def"), length=4)
    with pytest.raises(BadRequest, match="has 3 bytes but 4"):
        await files.upload(user, path, body(b"abc"), length=4)
    assert await files.lookup(user, path) is None
    assert await kept_in_database(app) == before


async def test_with_the_setting_at_zero_every_file_goes_to_the_store(
    settings: Settings, tmp_path: Path
) -> None:
    import httpx

    app = create_app(dataclasses.replace(settings, inline_max_bytes=0))
    await app.runtime.open()
    try:
        await app.runtime.services.accounts.create_user("alice", PASSWORD)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            alice = Dav(client, "alice", PASSWORD)
            await alice.put("/tiny.txt", b"tiny", status=201)
            assert (await alice.get("/tiny.txt")).content == b"tiny"
        assert await kept_in_database(app) == set()
        assert await app.runtime.blobs.exists(await blob_of(app, "/tiny.txt"))
    finally:
        await app.runtime.close()


def test_the_setting_is_bounded() -> None:
    with pytest.raises(BadRequest, match="inline_max_bytes"):
        Settings(inline_max_bytes=-1)
    with pytest.raises(BadRequest, match="inline_max_bytes"):
        Settings(inline_max_bytes=10**9)
    assert Settings(inline_max_bytes=4096, encryption=True).effective_inline_max_bytes == 0
