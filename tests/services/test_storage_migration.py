"""`ecrin storage migrate`: every blob copied under its id, verified, resumable; local <-> S3."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from ecrin.cli import main
from ecrin.services.storage_migration import StorageMigration, sha256_of
from ecrin.storage.local import LocalBlobStore
from ecrin.storage.protocol import BlobImporter, BlobStore
from tests.backends import empty_s3_prefix, s3_test_location

SIZES = [0, 1, 70_000, 6 * 1024 * 1024 + 3]  # the last one spans two S3 parts


async def open_store(kind: str, tmp_path: Path, stack: AsyncExitStack, name: str) -> BlobStore:
    if kind == "local":
        store: BlobStore = LocalBlobStore(tmp_path / name, fsync=False)
    else:
        from ecrin.storage.s3 import S3BlobStore, S3Location, S3Options

        url, key_id, secret = s3_test_location()
        store = S3BlobStore(
            S3Location.from_url(url), S3Options(key_id, secret, part_size=5 * 1024 * 1024)
        )
        stack.push_async_callback(empty_s3_prefix, url, key_id, secret)
    await store.open()
    stack.push_async_callback(store.close)
    return store


@pytest.fixture(params=["local->local", "local->s3", "s3->local"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[BlobStore, BlobStore]]:
    source_kind, destination_kind = request.param.split("->")
    async with AsyncExitStack() as stack:
        source = await open_store(source_kind, tmp_path, stack, "source")
        destination = await open_store(destination_kind, tmp_path, stack, "destination")
        yield source, destination


async def fill(store: BlobStore) -> dict[str, bytes]:
    contents = {}
    for size in SIZES:
        data = os.urandom(size)
        writer = await store.create()
        await writer.write(data)
        contents[await writer.commit()] = data
    return contents


async def read_all(store: BlobStore, blob_id: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(blob_id)])


async def test_every_blob_arrives_under_its_id(stores: tuple[BlobStore, BlobStore]) -> None:
    source, destination = stores
    contents = await fill(source)
    seen = []
    progress = await StorageMigration(source, destination).run(
        jobs=2, on_progress=lambda p: seen.append(p.done)
    )
    assert (progress.total, progress.copied, progress.failed) == (len(contents), len(contents), {})
    assert progress.bytes_copied == sum(SIZES)
    assert sorted(seen) == list(range(1, len(contents) + 1))
    for blob_id, data in contents.items():
        assert await read_all(destination, blob_id) == data

    again = await StorageMigration(source, destination).run()
    assert (again.copied, again.already_there) == (0, len(contents))


async def test_a_stopped_run_resumes(stores: tuple[BlobStore, BlobStore]) -> None:
    source, destination = stores
    contents = await fill(source)
    first = next(iter(contents))
    assert isinstance(destination, BlobImporter)
    done = await destination.create_with_id(first)  # copied before the stop
    await done.write(contents[first])
    await done.commit()
    unfinished = await destination.create_with_id(next(reversed(contents)))
    await unfinished.write(os.urandom(6 * 1024 * 1024))  # the stop came mid-copy

    progress = await StorageMigration(source, destination).run()
    assert (progress.copied, progress.already_there) == (len(contents) - 1, 1)
    for blob_id, data in contents.items():
        assert await sha256_of(destination, blob_id) == await sha256_of(source, blob_id)
        assert await read_all(destination, blob_id) == data
    await unfinished.abort()


async def test_verify_existing_replaces_a_wrong_copy(stores: tuple[BlobStore, BlobStore]) -> None:
    source, destination = stores
    contents = await fill(source)
    victim = next(blob_id for blob_id, data in contents.items() if data)
    assert isinstance(destination, BlobImporter)
    wrong = await destination.create_with_id(victim)
    await wrong.write(b"not the same bytes")
    await wrong.commit()

    trusting = await StorageMigration(source, destination).run()
    assert trusting.already_there == 1
    checking = await StorageMigration(source, destination).run(verify_existing=True)
    assert (checking.copied, checking.already_there) == (1, len(contents) - 1)
    assert await read_all(destination, victim) == contents[victim]


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    blob_root = data_dir / "blobs"

    async def prepare() -> dict[str, bytes]:
        store = LocalBlobStore(blob_root, fsync=False)
        await store.open()
        return await fill(store)

    import asyncio

    contents = asyncio.run(prepare())
    target = tmp_path / "elsewhere"
    with pytest.raises(SystemExit) as exited:
        main(["storage", "migrate", "--data-dir", str(data_dir), "--to", f"file://{target}"])
    assert exited.value.code == 0
    output = capsys.readouterr().out
    assert f"{len(contents)}/{len(contents)} blobs: {len(contents)} copied" in output
    assert "verified by SHA-256" in output
    for blob_id, data in contents.items():
        assert (target / blob_id[:2] / blob_id[2:4] / blob_id).read_bytes() == data


@pytest.mark.parametrize("destination", ["local", "s3"])
def test_encrypted_contents_move_with_their_key_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], destination: str
) -> None:
    import asyncio
    import dataclasses

    import httpx

    from ecrin.app import create_app
    from ecrin.settings import Settings
    from tests.support import PASSWORD, Dav

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = ["encryption = true", "fsync = false"]
    if destination == "local":
        target = f"file://{tmp_path / 'elsewhere'}"
        cleanup = None
    else:
        target, key_id, secret = s3_test_location()
        config += [f's3_access_key_id = "{key_id}"', f's3_secret_access_key = "{secret}"']
        cleanup = (target, key_id, secret)
    (data_dir / "ecrin.toml").write_text("\n".join(config) + "\n")
    settings = Settings(data_dir=data_dir, encryption=True, fsync=False)
    contents = os.urandom(3 * 1024 * 1024 + 5)

    async def session(settings: Settings, upload: bool) -> bytes:
        app = create_app(settings)
        await app.runtime.open()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                alice = Dav(client, "alice", PASSWORD)
                if upload:
                    await app.runtime.services.accounts.create_user("alice", PASSWORD)
                    await alice.put("/secret.bin", contents, status=201)
                return (await alice.get("/secret.bin")).content
        finally:
            await app.runtime.close()

    try:
        assert asyncio.run(session(settings, upload=True)) == contents
        with pytest.raises(SystemExit) as exited:
            main(["storage", "migrate", "--data-dir", str(data_dir), "--to", target])
        assert exited.value.code == 0, capsys.readouterr().out
        assert "1 key records copied and verified" in capsys.readouterr().out
        moved = dataclasses.replace(settings, storage_url=target)
        if cleanup is not None:
            moved = dataclasses.replace(
                moved, s3_access_key_id=cleanup[1], s3_secret_access_key=cleanup[2]
            )
        assert asyncio.run(session(moved, upload=False)) == contents
    finally:
        if cleanup is not None:
            asyncio.run(empty_s3_prefix(*cleanup))
