"""`ecrin keys encrypt-existing`: same ids, verified, resumable after a kill, then strict."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from ecrin.app import EcrinApp, create_app
from ecrin.cli import main
from ecrin.core.errors import StorageError
from ecrin.core.model import CheckReport
from ecrin.settings import Settings
from ecrin.storage.encryption.conversion import encrypt_existing
from ecrin.storage.encryption.store import EncryptedBlobStore
from ecrin.storage.local import LocalBlobStore
from tests.storage.encryption.conftest import SEGMENT, body_path, get, make_store, record_path
from tests.support import PASSWORD, Dav

MARKER = b"ECRIN-PLAINTEXT-BEFORE-ENCRYPTION-3b1f"


async def plain_blobs(root: Path, sizes: list[int]) -> dict[str, bytes]:
    plain = LocalBlobStore(root / "blobs", fsync=False)
    await plain.open()
    written = {}
    for size in sizes:
        data = (MARKER + os.urandom(size))[:size]
        writer = await plain.create()
        await writer.write(data)
        written[await writer.commit()] = data
    return written


async def test_encrypts_in_place_under_the_same_ids(tmp_path: Path) -> None:
    blobs = await plain_blobs(tmp_path, [0, 5, SEGMENT, 3 * SEGMENT + 7, 100_000])
    with pytest.raises(StorageError, match="encrypt-existing"):
        await make_store(tmp_path).open()
    store = make_store(tmp_path)
    store.allow_unencrypted = True
    await store.open()
    report = await encrypt_existing(store)
    assert report.encrypted == len(blobs) and not report.failed and not report.orphans
    for blob_id, data in blobs.items():
        assert await get(store, blob_id) == data
        assert MARKER[:16] not in body_path(store, blob_id).read_bytes()
    again = await encrypt_existing(store)
    assert again.encrypted == 0 and again.already == len(blobs)
    await store.close()
    strict = make_store(tmp_path)
    await strict.open()  # records exist now: no refusal, and every blob reads
    for blob_id, data in blobs.items():
        assert await get(strict, blob_id) == data


async def test_a_kill_between_record_and_body_is_finished_by_a_rerun(tmp_path: Path) -> None:
    blobs = await plain_blobs(tmp_path, [10, 2 * SEGMENT])
    store = make_store(tmp_path)
    store.allow_unencrypted = True
    await store.open()
    victim, other = list(blobs)
    # What a SIGKILL after the record's write and before the body's replacement leaves:
    # a record beside the plaintext body. It is refused, never misread.
    donor = await store.create()
    await donor.write(b"x")
    donor_id = await donor.commit()
    record_path(store, victim).parent.mkdir(parents=True, exist_ok=True)
    record_path(store, victim).write_bytes(record_path(store, donor_id).read_bytes())
    await store.delete(donor_id)
    with pytest.raises(StorageError):
        await get(store, victim)
    report = await encrypt_existing(store)
    assert report.encrypted == 2 and not report.failed
    assert await get(store, victim) == blobs[victim]
    assert await get(store, other) == blobs[other]


async def test_a_failing_body_write_leaves_the_plaintext_readable(tmp_path: Path) -> None:
    blobs = await plain_blobs(tmp_path, [5000])
    store = make_store(tmp_path)
    store.allow_unencrypted = True
    await store.open()
    inner = store.inner
    assert isinstance(inner, LocalBlobStore)

    class Failing(LocalBlobStore):
        async def create_with_id(self, blob_id: str):  # type: ignore[no-untyped-def]
            writer = await super().create_with_id(blob_id)

            async def commit() -> str:
                raise StorageError("disk on fire")

            writer.commit = commit  # type: ignore[method-assign]
            return writer

    store.inner = Failing(inner.root, fsync=False)
    report = await encrypt_existing(store)
    [blob_id] = blobs
    assert list(report.failed) == [blob_id]
    assert not record_path(store, blob_id).exists()
    assert body_path(store, blob_id).read_bytes() == blobs[blob_id]


@asynccontextmanager
async def alice_on(settings: Settings) -> AsyncIterator[tuple[EcrinApp, Dav]]:
    """An app on `settings`, open, with alice (created on first use) at her DAV client."""
    app = create_app(settings)
    await app.runtime.open()
    try:
        if not await app.runtime.services.accounts.list_users():
            await app.runtime.services.accounts.create_user("alice", PASSWORD)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, Dav(client, "alice", PASSWORD)
    finally:
        await app.runtime.close()


async def upload(settings: Settings, files: dict[str, bytes]) -> None:
    async with alice_on(settings) as (_, alice):
        for path, data in files.items():
            await alice.put(path, data, status=201)


async def start(settings: Settings) -> None:
    app = create_app(settings)
    try:
        await app.runtime.open()
    finally:
        await app.runtime.close()


async def serve(settings: Settings, files: dict[str, bytes]) -> CheckReport:
    """Every file reads back; then what `ecrin check --verify-checksums` finds."""
    async with alice_on(settings) as (app, alice):
        assert isinstance(app.runtime.blobs, EncryptedBlobStore)
        for path, data in files.items():
            assert (await alice.get(path)).content == data
        return await app.runtime.services.consistency.check(verify_checksums=True, grace_seconds=0)


def encrypt_existing_cli(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("ECRIN_ENCRYPTION", "true")
    monkeypatch.setenv("ECRIN_FSYNC", "false")
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "encrypt-existing", "--data-dir", str(data_dir)])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def blob_files(data_dir: Path) -> list[Path]:
    """The blobs' bodies (not their key records)."""
    return [
        p for p in (data_dir / "blobs").rglob("*") if p.is_file() and "key-records" not in p.parts
    ]


def test_cli_then_the_server_serves_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = Settings(data_dir=tmp_path / "data", fsync=False)
    encrypted = dataclasses.replace(plain, encryption=True)
    files = {"/a.txt": MARKER * 3, "/big.bin": MARKER + os.urandom(300_000)}

    async def upload_with_a_version() -> None:
        await upload(plain, files)
        async with alice_on(plain) as (_, alice):
            await alice.put("/a.txt", files["/a.txt"] + b"v2", status=204)
        files["/a.txt"] += b"v2"

    asyncio.run(upload_with_a_version())
    with pytest.raises(StorageError, match="encrypt-existing"):
        asyncio.run(start(encrypted))
    assert "blobs encrypted and verified" in encrypt_existing_cli(
        plain.data_dir, monkeypatch, capsys
    )
    bodies = blob_files(plain.data_dir)
    assert bodies and not any(MARKER[:16] in p.read_bytes() for p in bodies)
    report = asyncio.run(serve(encrypted, files))
    assert report.checksum_mismatches == [] and report.missing_blobs == []


def test_small_files_kept_in_the_database_are_refused_then_moved_out_encrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = Settings(data_dir=tmp_path / "data", fsync=False)
    encrypted = dataclasses.replace(plain, encryption=True)
    files = {"/a.txt": MARKER * 3, "/b.txt": MARKER + b"b"}

    asyncio.run(upload(plain, files))
    assert not blob_files(plain.data_dir)  # all in the database
    with pytest.raises(StorageError, match="database keeps small files"):
        asyncio.run(start(encrypted))
    output = encrypt_existing_cli(plain.data_dir, monkeypatch, capsys)
    assert "2 small files moved from the database" in output
    bodies = blob_files(plain.data_dir)
    assert len(bodies) == len(files)
    assert not any(MARKER[:16] in p.read_bytes() for p in bodies)
    report = asyncio.run(serve(encrypted, files))
    assert report.clean, report
    asyncio.run(start(encrypted))  # nothing left in the database: starts

    # Encryption off for a while, then on again: what was kept meanwhile is refused too.
    asyncio.run(upload(plain, {"/later.txt": MARKER + b"later"}))
    with pytest.raises(StorageError, match="database keeps small files"):
        asyncio.run(start(encrypted))
