"""Versions and the trash, over the DAV endpoints Nextcloud clients use."""

from __future__ import annotations

import hashlib
import os

from lxml import etree

from ecrin.app import EcrinApp
from ecrin.core.clock import ManualClock
from tests.sharing.helpers import share
from tests.support import NS, Dav

VERSIONS = "/remote.php/dav/versions/alice/versions"
TRASH = "/remote.php/dav/trashbin/alice/trash"


async def _dav(dav: Dav, method: str, url: str, status: int, **headers: str) -> bytes:
    response = await dav.client.request(method, url, auth=dav.auth, headers=headers)
    assert response.status_code == status, response.text
    return response.content


async def test_each_overwrite_keeps_a_version_and_restore_is_byte_identical(
    alice: Dav, clock: ManualClock
) -> None:
    contents = [f"revision {i}".encode() * 100 for i in range(3)]
    for data in contents:
        await alice.put("/report.txt", data)
        clock.advance(3600)  # older versions survive thinning
    file_id = await alice.prop("/report.txt", "oc:fileid")
    listing = await _dav(alice, "PROPFIND", f"{VERSIONS}/{file_id}", 207, Depth="1")
    version_hrefs = [h for h in hrefs_of(listing) if h.rstrip("/") != f"{VERSIONS}/{file_id}"]
    assert len(version_hrefs) == 2
    oldest = version_hrefs[-1]
    assert await _dav(alice, "GET", oldest, 200) == contents[0]

    await _dav(
        alice, "MOVE", oldest, 204, Destination="/remote.php/dav/versions/alice/restore/target"
    )
    restored = (await alice.get("/report.txt")).content
    assert hashlib.sha256(restored).digest() == hashlib.sha256(contents[0]).digest()
    assert await alice.prop("/report.txt", "oc:fileid") == file_id  # same file, older bytes
    listing = await _dav(alice, "PROPFIND", f"{VERSIONS}/{file_id}", 207, Depth="1")
    assert len(hrefs_of(listing)) == 3  # the collection + 2 versions (latest kept as one)


def hrefs_of(body: bytes) -> list[str]:
    return [h.text or "" for h in etree.fromstring(body).iterfind(".//d:href", NS)]


async def test_a_large_version_and_a_large_trashed_file_download_whole(
    alice: Dav, clock: ManualClock
) -> None:
    # Beyond what the database keeps and what one read gives: sent from the store's file.
    old, new = os.urandom(5 * 1024 * 1024 + 3), os.urandom(1024)
    await alice.put("/film.bin", old, status=201)
    clock.advance(3600)
    await alice.put("/film.bin", new, status=204)
    file_id = await alice.prop("/film.bin", "oc:fileid")
    listing = await _dav(alice, "PROPFIND", f"{VERSIONS}/{file_id}", 207, Depth="1")
    (version,) = [h for h in hrefs_of(listing) if h.rstrip("/") != f"{VERSIONS}/{file_id}"]
    assert await _dav(alice, "GET", version, 200) == old

    await alice.put("/trailer.bin", old, status=201)
    await alice.delete("/trailer.bin")
    listing = await _dav(alice, "PROPFIND", TRASH, 207, Depth="1")
    (item,) = [h for h in hrefs_of(listing) if h.rstrip("/") != TRASH]
    assert await _dav(alice, "GET", item, 200) == old


async def test_versions_are_not_readable_by_others(alice: Dav, bob: Dav) -> None:
    await alice.put("/private.txt", b"one")
    await alice.put("/private.txt", b"two")
    file_id = await alice.prop("/private.txt", "oc:fileid")
    response = await bob.client.request(
        "PROPFIND", f"/remote.php/dav/versions/bob/versions/{file_id}", auth=bob.auth
    )
    assert response.status_code == 404
    response = await bob.client.request("PROPFIND", f"{VERSIONS}/{file_id}", auth=bob.auth)
    assert response.status_code == 404


async def test_deleted_folder_returns_with_subtree_file_ids_and_shares(
    alice: Dav, bob: Dav
) -> None:
    await alice.mkcol("/proj")
    await alice.mkcol("/proj/sub")
    await alice.put("/proj/sub/deep.txt", b"deep", status=201)
    folder_id = await alice.prop("/proj", "oc:fileid")
    deep_id = await alice.prop("/proj/sub/deep.txt", "oc:fileid")
    await share(alice, "/proj", 0, shareWith="bob", permissions=1)
    assert (await bob.get("/proj/sub/deep.txt")).content == b"deep"

    await alice.delete("/proj")
    await alice.propfind("/proj", depth="0", status=404)
    await bob.get("/proj/sub/deep.txt", status=404)  # a trashed share gives nothing
    listing = await _dav(alice, "PROPFIND", TRASH, 207, Depth="1")
    items = [h for h in hrefs_of(listing) if h.rstrip("/") != TRASH]
    assert len(items) == 1 and items[0].startswith(f"{TRASH}/proj.d")
    assert b"<nc:trashbin-original-location>proj</nc:trashbin-original-location>" in listing

    name = items[0].rsplit("/", 1)[1]
    await _dav(
        alice, "MOVE", items[0], 201, Destination=f"/remote.php/dav/trashbin/alice/restore/{name}"
    )
    assert (await alice.get("/proj/sub/deep.txt")).content == b"deep"
    assert await alice.prop("/proj", "oc:fileid") == folder_id
    assert await alice.prop("/proj/sub/deep.txt", "oc:fileid") == deep_id
    assert (await bob.get("/proj/sub/deep.txt")).content == b"deep"  # the share is back


async def test_restore_beside_a_newer_item_with_the_same_name(alice: Dav) -> None:
    await alice.put("/notes.txt", b"old", status=201)
    await alice.delete("/notes.txt")
    await alice.put("/notes.txt", b"new", status=201)
    listing = await _dav(alice, "PROPFIND", TRASH, 207, Depth="1")
    item = next(h for h in hrefs_of(listing) if h.rstrip("/") != TRASH)
    await _dav(
        alice,
        "MOVE",
        item,
        201,
        Destination=f"/remote.php/dav/trashbin/alice/restore/{item.rsplit('/', 1)[1]}",
    )
    assert (await alice.get("/notes.txt")).content == b"new"
    assert (await alice.get("/notes (restored).txt")).content == b"old"


async def test_sharee_delete_goes_to_the_owners_trash(alice: Dav, bob: Dav) -> None:
    await alice.mkcol("/proj")
    await alice.put("/proj/a.txt", b"a", status=201)
    await share(alice, "/proj", 0, shareWith="bob", permissions=31)
    await bob.delete("/proj/a.txt")
    listing = await _dav(alice, "PROPFIND", TRASH, 207, Depth="1")
    assert b"proj/a.txt" in listing
    bob_trash = await _dav(bob, "PROPFIND", "/remote.php/dav/trashbin/bob/trash", 207, Depth="1")
    assert len(hrefs_of(bob_trash)) == 1  # only the collection itself


async def test_purge_frees_the_blobs_and_quota_excludes_the_trash(
    app: EcrinApp, alice: Dav
) -> None:
    await alice.put("/big.bin", b"x" * 1000, status=201)
    await alice.delete("/big.bin")
    user = await app.runtime.services.accounts.get_user("alice")
    assert user.used_bytes == 0
    await _dav(alice, "DELETE", TRASH, 204)
    report = await app.runtime.services.consistency.check(grace_seconds=0)
    assert report.clean, report


async def test_trash_retention_by_age(app: EcrinApp, alice: Dav, clock: ManualClock) -> None:
    await alice.put("/old.txt", b"old", status=201)
    await alice.delete("/old.txt")
    clock.advance(31 * 86400)
    user = await app.runtime.services.accounts.get_user("alice")
    assert await app.runtime.services.trash.expire(user) == 1
    assert await app.runtime.services.trash.items(user) == []
