"""COPY is set-based: a few statements per tree level, whatever the number of files, with the
same result as copying node by node (ids, properties, sizes, usage, blob references)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from ecrin.app import EcrinApp
from ecrin.core.clock import ManualClock
from ecrin.core.errors import QuotaExceeded
from ecrin.core.model import NodeKind, ShareType, User
from ecrin.core.paths import DavPath
from ecrin.services.sharing import ShareRequest
from tests.services.statements import counting
from tests.support import Dav

PROPPATCH = (
    '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:example">'
    "<d:set><d:prop><x:colour>{}</x:colour></d:prop></d:set></d:propertyupdate>"
)


async def account(app: EcrinApp, name: str) -> User:
    return await app.runtime.services.accounts.get_user(name)


async def assert_clean(app: EcrinApp, clock: ManualClock) -> None:
    """`ecrin check` finds nothing to repair (its grace period compares with the wall clock)."""
    clock.advance(max(0.0, time.time() + 1 - clock.now()))
    report = await app.runtime.services.consistency.check(grace_seconds=0)
    assert report.clean, report


async def tree(app: EcrinApp, user: User, path: str) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """What a copy must reproduce, by relative path: kind, sizes, contents and properties."""
    node = await app.runtime.services.files.stat(user, DavPath.parse(path))
    async with app.runtime.metadata.read() as tx:
        return {
            relative: (n.kind, n.size, n.blob_id, n.sha256, n.mtime, await tx.properties(n.id))
            for n, relative in await tx.subtree(node.id)
        }


@pytest.fixture
async def source(alice: Dav) -> Dav:
    """/src: files at two depths, an empty folder, dead properties on a folder and a file."""
    await alice.mkcol("/src")
    await alice.put("/src/one.txt", b"one", status=201)
    await alice.mkcol("/src/sub")
    await alice.put("/src/sub/two.txt", b"two, longer", status=201)
    await alice.mkcol("/src/sub/deeper")
    await alice.put("/src/sub/deeper/three.txt", b"three", status=201)
    await alice.mkcol("/src/empty")
    await alice.request("PROPPATCH", "/src", status=207, body=PROPPATCH.format("red"))
    await alice.request("PROPPATCH", "/src/sub/two.txt", status=207, body=PROPPATCH.format("b"))
    await alice.mkcol("/dst")
    return alice


async def test_a_copied_tree_is_its_source_again(
    app: EcrinApp, source: Dav, clock: ManualClock
) -> None:
    alice = await account(app, "alice")
    parent_etag = await source.prop("/dst", "d:getetag")
    used = alice.used_bytes

    await source.copy("/src", "/dst/copy", status=201)

    assert await tree(app, alice, "/dst/copy") == await tree(app, alice, "/src")
    files = app.runtime.services.files
    copy = await files.stat(alice, DavPath.parse("/dst/copy"))
    originals = {n.id for n, _ in await subtree(app, "/src")}
    assert not originals & {n.id for n, _ in await subtree(app, "/dst/copy")}
    assert copy.revision == 1 and f'"{copy.etag}"' == await source.prop("/dst/copy", "d:getetag")
    assert await source.prop("/dst", "d:getetag") != parent_etag
    assert (await source.get("/dst/copy/sub/deeper/three.txt")).content == b"three"
    assert (await account(app, "alice")).used_bytes == used + len(b"onetwo, longerthree")
    await assert_clean(app, clock)


async def subtree(app: EcrinApp, path: str) -> list[Any]:
    alice = await account(app, "alice")
    node = await app.runtime.services.files.stat(alice, DavPath.parse(path))
    async with app.runtime.metadata.read() as tx:
        return await tx.subtree(node.id)


async def test_a_depth_0_copy_takes_the_folder_and_its_properties_only(
    app: EcrinApp, source: Dav, clock: ManualClock
) -> None:
    await source.request(
        "COPY",
        "/src",
        status=201,
        headers={"Destination": source.url("/dst/alone"), "Depth": "0"},
    )
    alice = await account(app, "alice")
    copied = await tree(app, alice, "/dst/alone")
    assert list(copied) == [()]
    kind, size, *_, properties = copied[()]
    assert (kind, size) == (NodeKind.FOLDER, 0)
    assert properties == (await tree(app, alice, "/src"))[()][-1] != []
    await assert_clean(app, clock)


async def test_a_copy_over_quota_changes_nothing(
    app: EcrinApp, source: Dav, clock: ManualClock
) -> None:
    alice = await account(app, "alice")
    await app.runtime.services.accounts.set_quota("alice", alice.used_bytes + 5)
    before = await tree(app, alice, "/")
    with pytest.raises(QuotaExceeded):
        await app.runtime.services.files.copy(
            await account(app, "alice"),
            DavPath.parse("/src"),
            DavPath.parse("/dst/copy"),
            overwrite=False,
        )
    assert await tree(app, alice, "/") == before
    assert (await account(app, "alice")).used_bytes == alice.used_bytes
    await assert_clean(app, clock)


async def test_a_copy_onto_an_item_replaces_it(
    app: EcrinApp, source: Dav, clock: ManualClock
) -> None:
    await source.put("/dst/copy", b"in the way", status=201)
    await source.copy("/src", "/dst/copy", status=412, overwrite="F")
    await source.copy("/src", "/dst/copy", status=204, overwrite="T")
    alice = await account(app, "alice")
    assert await tree(app, alice, "/dst/copy") == await tree(app, alice, "/src")
    await assert_clean(app, clock)


async def test_a_copy_into_a_share_belongs_to_its_owner(
    app: EcrinApp, source: Dav, bob: Dav, clock: ManualClock
) -> None:
    await bob.mkcol("/inbox")
    sharing = app.runtime.services.sharing
    await sharing.create(
        await account(app, "bob"),
        DavPath.parse("/inbox"),
        ShareRequest(ShareType.USER, share_with="alice"),
    )
    inbox_etag = await bob.prop("/inbox", "d:getetag")

    await source.copy("/src", "/inbox/copy", status=201)

    bob_user, alice = await account(app, "bob"), await account(app, "alice")
    assert bob_user.used_bytes == len(b"onetwo, longerthree")
    assert await tree(app, bob_user, "/inbox/copy") == await tree(app, alice, "/src")
    assert {n.owner_id for n, _ in await subtree(app, "/inbox/copy")} == {bob_user.id}
    assert await bob.prop("/inbox", "d:getetag") != inbox_etag
    await assert_clean(app, clock)


async def grow(app: EcrinApp, path: str, folders: int, files: int) -> None:
    """`folders` folders of `files` files each under `path`, all of one blob's bytes, written
    straight to the metadata store (a thousand uploads would take the test's whole budget)."""
    alice = await account(app, "alice")
    content = b"ten bytes!"
    writer = await app.runtime.blobs.create()
    await writer.write(content)
    blob_id = await writer.commit()
    sha256 = hashlib.sha256(content).hexdigest()
    now = app.runtime.services.files.clock.now()
    parent = await app.runtime.services.files.stat(alice, DavPath.parse(path))
    async with app.runtime.metadata.write() as tx:
        await tx.insert_blob(blob_id, len(content), sha256, now)
        for i in range(folders):
            folder = await tx.insert_node(
                parent_id=parent.id,
                owner_id=alice.id,
                name=f"folder {i}",
                kind=NodeKind.FOLDER,
                size=files * len(content),
                mtime=now,
                now=now,
            )
            for j in range(files):
                await tx.insert_node(
                    parent_id=folder.id,
                    owner_id=alice.id,
                    name=f"file {j}.txt",
                    kind=NodeKind.FILE,
                    size=len(content),
                    mtime=now,
                    now=now,
                    blob_id=blob_id,
                    sha256=sha256,
                )
        await tx.set_blob_refcount(blob_id, folders * files)
        await tx.propagate_change(parent.id, folders * files * len(content))
        await tx.add_usage(alice.id, folders * files * len(content))


async def test_copying_a_thousand_files_takes_as_many_statements_as_ten(
    app: EcrinApp, alice: Dav, clock: ManualClock
) -> None:
    for name, files in (("/small", 5), ("/large", 500)):
        await alice.mkcol(name)
        await grow(app, name, folders=2, files=files)
    user = await account(app, "alice")
    copy = app.runtime.services.files.copy
    with counting(app.runtime.metadata.engine) as statements:
        _, small = await statements.count(
            copy(user, DavPath.parse("/small"), DavPath.parse("/small copy"), overwrite=False)
        )
        _, large = await statements.count(
            copy(user, DavPath.parse("/large"), DavPath.parse("/large copy"), overwrite=False)
        )
    assert large == small <= 12, statements.statements
    assert len(await subtree(app, "/large copy")) == 1 + 2 + 1000
    assert await tree(app, user, "/large copy") == await tree(app, user, "/large")
    await assert_clean(app, clock)
