"""The everyday verbs, in-process."""

from __future__ import annotations

import hashlib

from tests.support import Dav, hrefs


async def test_put_get_roundtrip(alice: Dav) -> None:
    created = await alice.put("/hello.txt", b"hello", status=201)
    assert created.headers["oc-etag"] == created.headers["etag"]
    response = await alice.get("/hello.txt")
    assert response.content == b"hello"
    assert response.headers["etag"] == created.headers["etag"]
    await alice.put("/hello.txt", b"bye", status=204)
    assert (await alice.get("/hello.txt")).content == b"bye"


async def test_folder_etag_changes_when_anything_below_changes(alice: Dav) -> None:
    await alice.mkcol("/a")
    await alice.mkcol("/a/b")
    before = await alice.prop("/", "d:getetag")
    before_a = await alice.prop("/a", "d:getetag")
    await alice.put("/a/b/deep.txt", b"x", status=201)
    assert await alice.prop("/", "d:getetag") != before
    assert await alice.prop("/a", "d:getetag") != before_a


async def test_folder_size_follows_its_contents(alice: Dav) -> None:
    await alice.mkcol("/a")
    await alice.put("/a/one", b"12345", status=201)
    await alice.put("/two", b"123", status=201)
    assert await alice.prop("/a", "oc:size") == "5"
    assert await alice.prop("/", "oc:size") == "8"
    await alice.move("/a/one", "/one", status=201)
    assert await alice.prop("/a", "oc:size") == "0"
    assert await alice.prop("/", "oc:size") == "8"


async def test_move_keeps_file_id_and_copy_shares_bytes(alice: Dav) -> None:
    await alice.put("/f.txt", b"data", status=201)
    file_id = await alice.prop("/f.txt", "oc:fileid")
    await alice.move("/f.txt", "/g.txt", status=201)
    assert await alice.prop("/g.txt", "oc:fileid") == file_id
    await alice.copy("/g.txt", "/h.txt", status=201)
    assert await alice.prop("/h.txt", "oc:fileid") != file_id
    assert (await alice.get("/h.txt")).content == b"data"


async def test_propfind_lists_children_with_sync_properties(alice: Dav) -> None:
    await alice.mkcol("/docs")
    await alice.put("/docs/r\u00e9sum\u00e9 final.txt", b"cv", status=201)
    response = await alice.propfind(
        "/docs", ["d:getetag", "oc:id", "oc:permissions", "d:getcontentlength"]
    )
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert hrefs(response) == [
        "/remote.php/dav/files/alice/docs/",
        "/remote.php/dav/files/alice/docs/r%C3%A9sum%C3%A9%20final.txt",
    ]
    assert await alice.prop("/docs/r\u00e9sum\u00e9 final.txt", "oc:permissions") == "RGDNVW"


async def test_range_requests(alice: Dav) -> None:
    await alice.put("/r.bin", bytes(range(100)), status=201)
    part = await alice.get("/r.bin", status=206, range="bytes=10-19")
    assert part.content == bytes(range(10, 20))
    assert part.headers["content-range"] == "bytes 10-19/100"
    tail = await alice.get("/r.bin", status=206, range="bytes=-5")
    assert tail.content == bytes(range(95, 100))
    await alice.get("/r.bin", status=416, range="bytes=200-300")


async def test_checksum_returned_after_upload(alice: Dav) -> None:
    data = b"checked"
    sha1 = hashlib.sha1(data).hexdigest()
    await alice.put("/c.txt", data, status=201, oc_checksum=f"SHA1:{sha1}")
    response = await alice.propfind("/c.txt", ["oc:checksums"], depth="0")
    assert f"SHA1:{sha1}" in response.text
    assert f"SHA256:{hashlib.sha256(data).hexdigest()}" in response.text
    assert (await alice.get("/c.txt")).headers["oc-checksum"] == f"SHA1:{sha1}"
