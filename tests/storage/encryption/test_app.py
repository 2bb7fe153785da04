"""Encryption through the real app: nothing readable at rest, nothing wrong ever served."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from ecrin.app import EcrinApp, create_app
from ecrin.core.errors import EcrinError, KeyUnavailable
from ecrin.settings import Settings
from ecrin.storage.encryption.store import EncryptedBlobStore
from tests.support import Dav

MARKER = b"ECRIN-MARKER-7f3a9c-do-not-store-in-clear"
SEGMENT = 64 * 1024


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", fsync=False, encryption=True)


def marked(size: int, seed: int) -> bytes:
    """`size` bytes with the marker at the start, across segment boundaries and at the end."""
    data = bytearray(os.urandom(size))
    for offset in (0, SEGMENT - 10, 2 * SEGMENT - 20, size - len(MARKER)):
        if 0 <= offset <= size - len(MARKER):
            data[offset : offset + len(MARKER)] = MARKER
    data[len(MARKER) : len(MARKER) + 4] = seed.to_bytes(4, "big")
    return bytes(data)


def occurrences(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def blob_bodies(app: EcrinApp) -> list[Path]:
    root = app.runtime.settings.data_dir / "blobs"
    return [p for p in root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*") if p.is_file()]


async def test_no_marker_at_rest_after_uploads_overwrites_copies_and_moves(
    app: EcrinApp, alice: Dav
) -> None:
    assert isinstance(app.runtime.blobs, EncryptedBlobStore)
    contents = {
        "/tiny.txt": MARKER,
        "/one-segment.bin": marked(SEGMENT, 1),
        "/big.bin": marked(3 * SEGMENT + 5000, 2),
        "/empty": b"",
    }
    await alice.mkcol("/docs")
    for path, data in contents.items():
        await alice.put(path, data, status=201)
    for version in range(3):  # overwrites keep older versions, each its own blob
        contents["/docs/report.txt"] = marked(SEGMENT + 100 * version, 10 + version)
        await alice.put("/docs/report.txt", contents["/docs/report.txt"])
    await alice.copy("/big.bin", "/docs/big-copy.bin", status=201)
    contents["/docs/big-copy.bin"] = contents["/big.bin"]
    await alice.move("/tiny.txt", "/docs/tiny.txt", status=201)
    contents["/docs/tiny.txt"] = contents.pop("/tiny.txt")
    for path, data in contents.items():
        response = await alice.get(path)
        assert response.content == data, path
        assert await alice.prop(path, "d:getcontentlength") == str(len(data))
    data_dir = app.runtime.settings.data_dir
    assert len(blob_bodies(app)) >= 6
    assert occurrences(data_dir, MARKER) == []
    assert occurrences(data_dir, MARKER[:16]) == []
    # A consistency check re-hashes the plaintext and finds every checksum right.
    report = await app.runtime.services.consistency.check(verify_checksums=True, grace_seconds=0)
    assert report.checksum_mismatches == [] and report.missing_blobs == []


async def test_ranged_get_across_segment_boundaries(alice: Dav) -> None:
    data = os.urandom(4 * SEGMENT + 123)
    await alice.put("/f.bin", data, status=201)
    for start, end in [
        (0, 0),
        (SEGMENT - 1, SEGMENT),
        (SEGMENT - 5, 3 * SEGMENT + 7),
        (4 * SEGMENT, len(data) - 1),
        (17, 17 + 2 * SEGMENT),
    ]:
        response = await alice.get("/f.bin", status=206, range=f"bytes={start}-{end}")
        assert response.content == data[start : end + 1], (start, end)
    suffix = await alice.get("/f.bin", status=206, range="bytes=-70000")
    assert suffix.content == data[-70000:]


async def _get_never_wrong(alice: Dav, path: str, **headers: str) -> None:
    """The client gets an error status or a broken transfer, never wrong bytes."""
    try:
        response = await alice.get(path, status=None, **headers)
    except (EcrinError, httpx.HTTPError):
        return
    assert response.status_code >= 500, f"{response.status_code}: served bytes after tampering"


@pytest.mark.parametrize("where", ["first segment", "last segment", "truncated", "key record"])
async def test_tampered_storage_is_never_served(
    app: EcrinApp, alice: Dav, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    data = os.urandom(3 * SEGMENT + 10)
    await alice.put("/victim.bin", data, status=201)
    [body] = blob_bodies(app)
    raw = bytearray(body.read_bytes())
    if where == "first segment":
        raw[100] ^= 1
    elif where == "last segment":
        raw[-20] ^= 1
    elif where == "truncated":
        del raw[-1]
    else:
        record = next((app.runtime.settings.data_dir / "blobs" / "key-records").glob("*/*/*"))
        record.write_bytes(record.read_bytes()[:-1] + b"\0")
    body.write_bytes(bytes(raw))
    caplog.clear()
    if where == "first segment" or where == "key record":
        response = await alice.get("/victim.bin", status=500)
        assert data[:100] not in response.content
    else:
        await _get_never_wrong(alice, "/victim.bin")
        # Ranges inside intact segments still read correctly.
        ok = await alice.get("/victim.bin", status=206, range="bytes=0-999")
        assert ok.content == data[:1000]
    assert any("unreadable" in r.getMessage() for r in caplog.records)


async def test_a_small_file_with_bytes_appended_gets_an_error_status(
    app: EcrinApp, alice: Dav, caplog: pytest.LogCaptureFixture
) -> None:
    """A small file is answered in one piece once the store has checked the whole body."""
    await alice.put("/small.txt", b"a small file", status=201)
    [body] = blob_bodies(app)
    body.write_bytes(body.read_bytes() + b"\0")
    caplog.clear()
    response = await alice.get("/small.txt", status=500)
    assert b"a small file" not in response.content
    assert any("longer than its key record" in r.getMessage() for r in caplog.records)


async def test_missing_key_file_refuses_to_start_and_says_why(
    settings: Settings, app: EcrinApp, alice: Dav
) -> None:
    await alice.put("/f.txt", b"contents", status=201)
    settings.effective_kek_file.rename(settings.effective_kek_file.with_suffix(".moved"))
    again = create_app(settings)
    with pytest.raises(KeyUnavailable, match="missing but encrypted files exist"):
        await again.runtime.open()
    await again.runtime.close()


async def test_key_retired_under_a_running_server_gives_503(
    app: EcrinApp, alice: Dav, caplog: pytest.LogCaptureFixture
) -> None:
    await alice.put("/f.txt", b"contents", status=201)
    store = app.runtime.blobs
    assert isinstance(store, EncryptedBlobStore)
    await store.keks.create("next")
    await store.keks.destroy(store.kek_id)
    caplog.clear()
    response = await alice.get("/f.txt", status=503)
    assert b"encryption key of this file" in response.content
    assert b"/" not in response.content.split(b"encryption key")[1].split(b"<")[0]
    assert any("not in the key file" in r.getMessage() for r in caplog.records)
