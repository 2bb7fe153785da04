"""Checksums end to end: verified before the commit; a mismatch stores nothing (400)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from ecrin.settings import Settings
from tests.support import Dav, hrefs

OLD = b"the old contents, which must survive"
NEW = b"new contents that were corrupted in transit"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data):08x}"


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def stored_files(settings: Settings) -> tuple[set[Path], set[Path]]:
    """(committed blob files, temporary files) in the local blob store."""
    root = settings.data_dir / "blobs"
    every = {p for p in root.rglob("*") if p.is_file()}
    temporary = {p for p in every if p.parent == root / "tmp"}
    return every - temporary, temporary


Checksum = Callable[[bytes], str]
GOOD: list[tuple[str, Checksum, str]] = [
    ("OC-Checksum", lambda d: f"SHA1:{sha1(d)}", "SHA1"),
    ("OC-Checksum", lambda d: f"MD5:{md5(d)}", "MD5"),
    ("OC-Checksum", lambda d: f"ADLER32:{adler32(d)}", "ADLER32"),
    ("OC-Checksum", lambda d: f"sha1:{sha1(d).upper()}", "SHA1"),
    ("Content-MD5", content_md5, "MD5"),
]


@pytest.mark.parametrize(("header", "value", "algorithm"), GOOD)
async def test_a_matching_checksum_is_stored_and_returned(
    alice: Dav, header: str, value: Checksum, algorithm: str
) -> None:
    await alice.put("/f.bin", NEW, status=201, **{header.replace("-", "_"): value(NEW)})
    download = await alice.get("/f.bin")
    assert download.content == NEW
    expected = f"{algorithm}:{ {'SHA1': sha1, 'MD5': md5, 'ADLER32': adler32}[algorithm](NEW) }"
    assert download.headers["oc-checksum"] == expected
    checksums = (await alice.propfind("/f.bin", ["oc:checksums"], depth="0")).text
    assert expected in checksums
    assert f"SHA256:{hashlib.sha256(NEW).hexdigest()}" in checksums


@pytest.mark.parametrize(("header", "value", "algorithm"), GOOD)
async def test_a_mismatch_is_400_and_stores_nothing(
    alice: Dav, settings: Settings, header: str, value: Checksum, algorithm: str
) -> None:
    wrong = value(b"something else entirely")
    await alice.mkcol("/docs")
    created = await alice.put("/docs/kept.txt", OLD, status=201)
    folder_etag = await alice.prop("/docs", "d:getetag")
    used = await alice.prop("/", "d:quota-used-bytes")
    blobs_before, _ = stored_files(settings)

    for target in ("/docs/kept.txt", "/docs/new.txt"):
        response = await alice.put(target, NEW, status=400, **{header.replace("-", "_"): wrong})
        assert b"checksum mismatch" in response.content
        assert algorithm.encode() in response.content

    kept = await alice.get("/docs/kept.txt")
    assert kept.content == OLD
    assert kept.headers["etag"] == created.headers["etag"]
    await alice.get("/docs/new.txt", status=404)
    assert hrefs(await alice.propfind("/docs")) == [
        "/remote.php/dav/files/alice/docs/",
        "/remote.php/dav/files/alice/docs/kept.txt",
    ]
    assert await alice.prop("/docs", "d:getetag") == folder_etag
    assert await alice.prop("/", "d:quota-used-bytes") == used
    blobs_after, temporary = stored_files(settings)
    assert blobs_after == blobs_before
    assert temporary == set()


async def test_every_checksum_sent_must_match(alice: Dav, settings: Settings) -> None:
    """A correct OC-Checksum does not excuse a wrong Content-MD5, nor the other way round."""
    blobs_before, _ = stored_files(settings)
    await alice.put(
        "/both.bin",
        NEW,
        status=400,
        oc_checksum=f"SHA1:{sha1(NEW)}",
        content_md5=content_md5(b"other"),
    )
    await alice.put(
        "/both.bin",
        NEW,
        status=400,
        oc_checksum=f"SHA1:{sha1(b'other')}",
        content_md5=content_md5(NEW),
    )
    await alice.get("/both.bin", status=404)
    assert stored_files(settings)[0] == blobs_before
    await alice.put(
        "/both.bin", NEW, status=201, oc_checksum=f"MD5:{md5(NEW)}", content_md5=content_md5(NEW)
    )


async def test_a_large_streamed_body_is_verified_too(alice: Dav, settings: Settings) -> None:
    data = bytes(range(256)) * 20_000  # ~5 MB, several chunks
    corrupted = data[:-1] + b"\x00"
    await alice.put("/big.bin", corrupted, status=400, oc_checksum=f"SHA1:{sha1(data)}")
    await alice.get("/big.bin", status=404)
    assert stored_files(settings) == (set(), set())
    await alice.put("/big.bin", data, status=201, oc_checksum=f"SHA1:{sha1(data)}")
    assert (await alice.get("/big.bin")).content == data


async def test_malformed_checksum_headers_are_400_unknown_types_ignored(alice: Dav) -> None:
    for header, value in (
        ("oc_checksum", "SHA1"),
        ("oc_checksum", "SHA1:"),
        ("content_md5", "%%%"),
        ("content_md5", base64.b64encode(b"short").decode()),
    ):
        await alice.put("/m.txt", NEW, status=400, **{header: value})
    await alice.get("/m.txt", status=404)
    # A type Ecrin does not know cannot be verified: it is ignored, as Nextcloud does.
    await alice.put("/m.txt", NEW, status=201, oc_checksum="CRC64:0123")
