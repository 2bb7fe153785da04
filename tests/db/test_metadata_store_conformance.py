"""What every MetadataStore must do, whatever the database (SQLite, PostgreSQL).

Each test runs once per database in `conftest.py`, through the protocol's transactions only.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from ecrin.core.errors import Conflict
from ecrin.core.model import DeadProperty, Lock, LockScope, Mount, Node, NodeKind, User
from ecrin.db.protocol import MetadataStore, MetadataTransaction, PathWalk

NOW = 1_700_000_000.0


async def add_user(store: MetadataStore, name: str = "alice", quota: int | None = None) -> User:
    async with store.write() as tx:
        return await tx.insert_user(name, name.title(), "hash-" + name, quota, False, NOW)


async def add_node(
    tx: MetadataTransaction,
    parent: Node,
    name: str,
    kind: NodeKind = NodeKind.FOLDER,
    blob_id: str | None = None,
    size: int = 0,
) -> Node:
    return await tx.insert_node(
        parent_id=parent.id,
        owner_id=parent.owner_id,
        name=name,
        kind=kind,
        size=size,
        mtime=NOW,
        now=NOW,
        blob_id=blob_id,
        sha256=None if blob_id is None else "0" * 64,
    )


async def add_file(tx: MetadataTransaction, parent: Node, name: str, blob_id: str) -> Node:
    return await add_node(tx, parent, name, NodeKind.FILE, blob_id, size=10)


# --- users -------------------------------------------------------------------------------


async def test_users(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store, "alice", quota=1000)
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        await tx.set_password_hash(bob.id, "new-hash")
        await tx.set_quota(alice.id, 2000)
        await tx.add_usage(alice.id, 300)
        await tx.add_usage(alice.id, -100)
    async with metadata_store.read() as tx:
        assert await tx.user_count() == 2
        assert [u.name for u in await tx.list_users()] == ["alice", "bob"]
        found = await tx.user_by_name("alice")
        assert found is not None and found.id == alice.id
        assert found.quota_bytes == 2000 and found.used_bytes == 200
        assert await tx.user_by_id(bob.id) == bob
        assert await tx.password_hash(bob.id) == "new-hash"
        assert await tx.user_by_name("carol") is None
        root = await tx.root_node(alice.id)
    assert root.is_folder and root.parent_id is None and root.owner_id == alice.id


async def test_duplicate_user_is_a_conflict(metadata_store: MetadataStore) -> None:
    await add_user(metadata_store, "alice")
    with pytest.raises(Conflict):
        await add_user(metadata_store, "alice")
    async with metadata_store.read() as tx:
        assert await tx.user_count() == 1


# --- the tree ----------------------------------------------------------------------------


async def test_tree_operations(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        docs = await add_node(tx, root, "docs")
        await tx.insert_blob("b1", 10, "0" * 64, NOW)
        report = await add_file(tx, docs, "report.txt", "b1")
        await tx.update_file(
            report.id,
            size=20,
            mtime=NOW + 1,
            blob_id="b1",
            sha256="1" * 64,
            content_type="text/plain",
            checksums="SHA1:abc",
        )
        await tx.set_mtime(docs.id, NOW + 5)
        await tx.bump_revisions([root.id, docs.id], size_delta=20)
    async with metadata_store.read() as tx:
        assert await tx.child(root.id, "docs") == await tx.node(docs.id)
        stored = await tx.node(report.id)
        assert stored is not None
        assert (stored.size, stored.revision, stored.content_type) == (20, 2, "text/plain")
        assert stored.checksums == "SHA1:abc" and stored.sha256 == "1" * 64
        folder = await tx.node(docs.id)
        assert folder is not None and folder.mtime == NOW + 5 and folder.size == 20
        assert folder.revision == 2
        assert await tx.child(root.id, "nothing") is None
        assert await tx.node(10**9) is None


async def test_children_sort_bytewise(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    names = ["b", "B", "a", "é", "Z", "_", "a b", "ab"]
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        for name in names:
            await add_node(tx, root, name)
    async with metadata_store.read() as tx:
        listed = [n.name for n in await tx.children(root.id)]
    assert listed == sorted(names, key=lambda n: n.encode())


async def test_same_name_in_one_folder_is_a_conflict(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        await add_node(tx, root, "taken")
        other = await add_node(tx, root, "other")
    with pytest.raises(Conflict):
        async with metadata_store.write() as tx:
            await add_node(tx, root, "new")  # rolled back with the rest
            await add_node(tx, root, "taken")
    with pytest.raises(Conflict):
        async with metadata_store.write() as tx:
            await tx.move_node(other.id, root.id, "taken")
    async with metadata_store.read() as tx:
        assert [n.name for n in await tx.children(root.id)] == ["other", "taken"]


async def test_move_keeps_the_subtree(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        a = await add_node(tx, root, "a")
        b = await add_node(tx, root, "b")
        inner = await add_node(tx, a, "inner")
        await tx.move_node(a.id, b.id, "moved")
    async with metadata_store.read() as tx:
        moved = await tx.child(b.id, "moved")
        assert moved is not None and moved.id == a.id
        assert await tx.child(moved.id, "inner") == await tx.node(inner.id)
        assert await tx.child(root.id, "a") is None


async def test_subtree_lists_parents_before_children(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        top = await add_node(tx, root, "top")
        left = await add_node(tx, top, "left")
        await add_node(tx, top, "right")
        await add_node(tx, left, "deep")
    async with metadata_store.read() as tx:
        entries = await tx.subtree(top.id)
        assert await tx.subtree(10**9) == []
    paths = [relative for _, relative in entries]
    assert paths[0] == ()
    assert set(paths) == {(), ("left",), ("right",), ("left", "deep")}
    assert paths.index(("left",)) < paths.index(("left", "deep"))


async def test_delete_subtree_releases_unreferenced_blobs(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        first = await add_node(tx, root, "first")
        second = await add_node(tx, root, "second")
        await tx.insert_blob("shared", 10, "0" * 64, NOW)
        await tx.insert_blob("own", 10, "0" * 64, NOW)
        await add_file(tx, first, "x", "shared")
        await add_file(tx, second, "copy-of-x", "shared")
        await tx.retain_blob("shared")
        await add_file(tx, await add_node(tx, first, "sub"), "y", "own")
        await tx.set_property(first.id, DeadProperty("urn:x", "color", "<color/>"))
    async with metadata_store.write() as tx:
        assert await tx.delete_subtree(first.id) == ["own"]
    async with metadata_store.read() as tx:
        assert await tx.child(root.id, "first") is None
        assert await tx.properties(first.id) == []
        assert (await tx.blob_records())["shared"][2] == 1
    async with metadata_store.write() as tx:
        assert await tx.delete_subtree(second.id) == ["shared"]
    async with metadata_store.read() as tx:
        assert await tx.blob_records() == {}
        assert [n.name for n in await tx.children(root.id)] == []


async def test_blob_reference_counts(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        await tx.insert_blob("b1", 10, "a" * 64, NOW)
        await add_file(tx, root, "one", "b1")
        await add_file(tx, root, "two", "b1")
        await tx.retain_blob("b1")
        await tx.retain_blob("b1")  # one too many: `ecrin check` finds it
    async with metadata_store.read() as tx:
        assert await tx.blob_records() == {"b1": (10, "a" * 64, 3)}
        assert await tx.blob_reference_counts() == {"b1": 2}
        assert await tx.usage_by_user() == {alice.id: 20}
    async with metadata_store.write() as tx:
        await tx.set_blob_refcount("b1", 2)
        assert await tx.release_blob("b1") == []
        assert await tx.release_blob("b1") == ["b1"]
        assert await tx.release_blob("b1") == []  # no record left: nothing more to release
    async with metadata_store.read() as tx:
        assert await tx.blob_records() == {}


async def test_retaining_a_released_blob_is_a_conflict(metadata_store: MetadataStore) -> None:
    async with metadata_store.write() as tx:
        await tx.insert_blob("gone", 1, "0" * 64, NOW)
        await tx.set_blob_refcount("gone", 0)
    with pytest.raises(Conflict):
        async with metadata_store.write() as tx:
            await tx.retain_blob("gone")


async def test_delete_user_removes_everything(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        await tx.insert_blob("b1", 10, "0" * 64, NOW)
        await add_file(tx, await add_node(tx, root, "f"), "file", "b1")
        await tx.insert_app_password(alice.id, "phone", "token-hash", NOW)
    async with metadata_store.write() as tx:
        assert await tx.delete_user(alice.id) == ["b1"]
    async with metadata_store.read() as tx:
        assert [u.name for u in await tx.list_users()] == ["bob"]
        assert await tx.blob_records() == {}
        assert await tx.root_node(bob.id)


# --- properties, locks, app passwords ----------------------------------------------------


async def test_dead_properties(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        a, b = await add_node(tx, root, "a"), await add_node(tx, root, "b")
        await tx.set_property(a.id, DeadProperty("urn:x", "color", "<x:color>red</x:color>"))
        await tx.set_property(a.id, DeadProperty("urn:x", "color", "<x:color>blue</x:color>"))
        await tx.set_property(a.id, DeadProperty("urn:x", "author", "<x:author/>"))
        await tx.set_property(b.id, DeadProperty("urn:y", "tag", "<y:tag/>"))
        await tx.remove_property(a.id, "urn:x", "author")
        await tx.remove_property(a.id, "urn:x", "never-set")
    async with metadata_store.read() as tx:
        assert await tx.properties(a.id) == [
            DeadProperty("urn:x", "color", "<x:color>blue</x:color>")
        ]
        batch = await tx.properties_of([a.id, b.id, root.id])
    assert set(batch) == {a.id, b.id}
    assert batch[b.id] == [DeadProperty("urn:y", "tag", "<y:tag/>")]


def make_lock(token: str, owner: User, expires_at: float) -> Lock:
    return Lock(
        token=token,
        owner_id=owner.id,
        path=("docs", "a.txt"),
        scope=LockScope.EXCLUSIVE,
        depth_infinity=False,
        owner_xml="<owner/>",
        principal_id=owner.id,
        timeout_seconds=60,
        expires_at=expires_at,
    )


async def test_locks(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        await tx.insert_lock(make_lock("live", alice, NOW + 60))
        await tx.insert_lock(make_lock("stale", alice, NOW - 1))
    async with metadata_store.read() as tx:
        assert [lock.token for lock in await tx.locks(alice.id, NOW)] == ["live"]
    async with metadata_store.write() as tx:
        await tx.refresh_lock("live", 600, NOW + 600)
        await tx.delete_expired_locks(NOW)
        assert not await tx.delete_lock("stale")
    async with metadata_store.read() as tx:
        (lock,) = await tx.locks(alice.id, NOW + 300)
    assert lock == dataclasses.replace(make_lock("live", alice, NOW + 600), timeout_seconds=600)
    async with metadata_store.write() as tx:
        assert await tx.delete_lock("live")
        assert await tx.locks(alice.id, NOW) == []


async def test_app_passwords(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        phone = await tx.insert_app_password(alice.id, "phone", "hash-1", NOW)
        await tx.insert_app_password(alice.id, "laptop", "hash-2", NOW)
        await tx.touch_app_password(phone.id, NOW + 10)
    async with metadata_store.read() as tx:
        assert [p.name for p in await tx.list_app_passwords(alice.id)] == ["phone", "laptop"]
        found = await tx.app_password_user(alice.id, "hash-1")
        assert found is not None and found.id == phone.id and found.last_used_at == NOW + 10
        assert await tx.app_password_user(bob.id, "hash-1") is None
    async with metadata_store.write() as tx:
        assert not await tx.delete_app_password(bob.id, phone.id)
        assert await tx.delete_app_password(alice.id, phone.id)
    async with metadata_store.read() as tx:
        assert [p.name for p in await tx.list_app_passwords(alice.id)] == ["laptop"]


# --- transactions ------------------------------------------------------------------------


async def test_an_exception_rolls_back_everything(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    with pytest.raises(RuntimeError):
        async with metadata_store.write() as tx:
            root = await tx.root_node(alice.id)
            await add_node(tx, root, "doomed")
            await tx.insert_user("bob", "Bob", "hash", None, False, NOW)
            await tx.add_usage(alice.id, 999)
            raise RuntimeError("the service changed its mind")
    async with metadata_store.read() as tx:
        assert await tx.children(root.id) == []
        assert await tx.user_by_name("bob") is None
        fresh = await tx.user_by_id(alice.id)
    assert fresh is not None and fresh.used_bytes == 0


@pytest.mark.parametrize("first_read", ["root_node", "locks"])  # locks: what a PUT reads first
async def test_writers_of_one_home_see_each_other(
    metadata_store: MetadataStore, first_read: str
) -> None:
    """A writer that starts while another holds the home waits for it, then sees its changes:
    read-then-write services (resolve, check, write) never act on stale reads. A writer holds
    the home from its first read of it."""
    alice = await add_user(metadata_store)
    first_holds_home = asyncio.Event()

    async def read_home(tx: MetadataTransaction) -> None:
        if first_read == "locks":
            await tx.locks(alice.id, NOW)
        else:
            await tx.root_node(alice.id)

    async def second() -> Node | None:
        await first_holds_home.wait()
        async with metadata_store.write() as tx:
            await read_home(tx)
            root = await tx.root_node(alice.id)
            return await tx.child(root.id, "made-by-first")

    async with metadata_store.write() as tx:
        await read_home(tx)
        first_holds_home.set()
        waiter = asyncio.create_task(second())
        # A store that let the second writer through would finish it now, seeing nothing.
        await asyncio.wait({waiter}, timeout=0.5)
        await add_node(tx, await tx.root_node(alice.id), "made-by-first")
    assert await waiter is not None


async def test_reads_run_beside_a_writer(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        root = await tx.root_node(alice.id)
        await add_node(tx, root, "uncommitted")
        async with metadata_store.read() as reader:
            assert await reader.children(root.id) == []


async def test_adding_a_member_twice_leaves_the_transaction_usable(
    metadata_store: MetadataStore,
) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        group = await tx.insert_group("staff", "Staff", NOW)
        assert await tx.add_member(group.id, alice.id)
        assert not await tx.add_member(group.id, alice.id)
        root = await tx.root_node(alice.id)
        await add_node(tx, root, "after")  # the transaction goes on
    async with metadata_store.read() as tx:
        assert [u.name for u in await tx.group_members(group.id)] == ["alice"]
        assert await tx.child(root.id, "after") is not None


# --- few statements for many rows: path walks, change propagation, set-based copies -----


async def share_with(tx: MetadataTransaction, node: Node, recipient: User, parent: Node) -> Mount:
    """A user share of `node` mounted as "shared" in `parent` of the recipient's tree."""
    share = await tx.insert_share(
        share_type=0,
        node_id=node.id,
        node_owner_id=node.owner_id,
        created_by=node.owner_id,
        share_with_user=recipient.id,
        permissions=31,
        created_at=NOW,
    )
    mount = Mount(share.id, recipient.id, parent.id, "shared")
    await tx.insert_mount(mount)
    return mount


async def test_walk_follows_names_and_finds_mount_points(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store, "alice")
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        home = await tx.root_node(alice.id)
        a = await add_node(tx, home, "a")
        b = await add_node(tx, a, "b")
        await tx.insert_blob("b1", 10, "0" * 64, NOW)
        f = await add_file(tx, b, "f", "b1")
        bobs = await add_node(tx, await tx.root_node(bob.id), "bobs")
        mount = await share_with(tx, bobs, alice, a)
    async with metadata_store.read() as tx:
        found = await tx.walk(alice.id, ["a", "b", "f"])
        assert found == PathWalk(home, (a, b, f), None)
        assert await tx.walk(alice.id, []) == PathWalk(home, (), None)
        assert await tx.walk(alice.id, ["a", "missing", "f"]) == PathWalk(home, (a,), None)
        assert await tx.walk(alice.id, ["a", "shared", "x"]) == PathWalk(home, (a,), mount)
        # only the walker's own mount points
        assert await tx.walk(bob.id, ["a", "shared"], start_id=home.id) == PathWalk(
            home, (a,), None
        )
        assert await tx.walk(alice.id, ["f"], start_id=b.id) == PathWalk(b, (f,), None)
        assert await tx.walk(alice.id, ["x"], start_id=10**9) == PathWalk(None, (), None)


async def test_walk_follows_paths_deeper_than_one_statement(
    metadata_store: MetadataStore,
) -> None:
    alice = await add_user(metadata_store)
    chain: list[Node] = []
    async with metadata_store.write() as tx:
        parent = home = await tx.root_node(alice.id)
        for depth in range(45):
            parent = await add_node(tx, parent, f"level {depth}")
            chain.append(parent)
    names = [n.name for n in chain]
    async with metadata_store.read() as tx:
        assert await tx.walk(alice.id, names) == PathWalk(home, tuple(chain), None)
        deeper = await tx.walk(alice.id, [*names, "missing", "more"])
        assert deeper == PathWalk(home, tuple(chain), None)
        half = await tx.walk(alice.id, [*names[:30], "missing", *names[31:]])
        assert half == PathWalk(home, tuple(chain[:30]), None)


async def test_walk_brings_the_bytes_its_last_node_keeps(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        parent = home = await tx.root_node(alice.id)
        names = []
        for depth in range(25):  # the file is in the second statement's span
            parent = await add_node(tx, parent, f"level {depth}")
            names.append(parent.name)
        await tx.insert_blob("kept", 5, "0" * 64, NOW, b"bytes")
        await tx.insert_blob("stored", 5, "0" * 64, NOW)
        kept = await add_file(tx, parent, "kept.txt", "kept")
        await add_file(tx, home, "stored.txt", "stored")
    async with metadata_store.read() as tx:
        walked = await tx.walk(alice.id, [*names, "kept.txt"], content=True)
        assert walked.nodes[-1] == kept and walked.content == b"bytes"
        assert (await tx.walk(alice.id, [], start_id=kept.id, content=True)).content == b"bytes"
        assert (await tx.walk(alice.id, [*names, "kept.txt"])).content is None
        assert (await tx.walk(alice.id, ["stored.txt"], content=True)).content is None
        assert (await tx.walk(alice.id, [*names, "nothing"], content=True)).content is None


async def test_bump_ancestors_says_which_are_shared(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store, "alice")
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        home = await tx.root_node(alice.id)
        a = await add_node(tx, home, "a")
        b = await add_node(tx, a, "b")
        await share_with(tx, a, bob, await tx.root_node(bob.id))
    async with metadata_store.write() as tx:
        changed = await tx.bump_ancestors(b.id, 7)
        assert sorted(changed.ids) == sorted([home.id, a.id, b.id])
        assert changed.shared_ids == [a.id]
        again = await tx.bump_ancestors(b.id, 1, skip=[a.id, home.id])
        assert again.ids == [b.id] and again.shared_ids == []
    async with metadata_store.read() as tx:
        sizes = {n.id: (n.size, n.revision) for n in await tx.ancestors(b.id)}
        assert [n.id for n in await tx.ancestors(b.id)] == [b.id, a.id, home.id]
    assert sizes == {b.id: (8, 3), a.id: (7, 2), home.id: (7, 2)}


async def test_usage_and_file_updates_return_what_they_changed(
    metadata_store: MetadataStore,
) -> None:
    alice = await add_user(metadata_store, quota=100)
    async with metadata_store.write() as tx:
        changed = await tx.add_usage(alice.id, 30)
        assert changed is not None and (changed.used_bytes, changed.quota_bytes) == (30, 100)
        assert await tx.add_usage(alice.id, 0) is None
        await tx.insert_blob("b1", 10, "0" * 64, NOW)
        f = await add_file(tx, await tx.root_node(alice.id), "f", "b1")
        updated = await tx.update_file(
            f.id,
            size=3,
            mtime=NOW + 1,
            blob_id="b1",
            sha256="1" * 64,
            content_type="text/plain",
            checksums=None,
        )
        assert updated == await tx.node(f.id)
        assert (updated.size, updated.revision, updated.content_type) == (3, 2, "text/plain")


async def make_tree(tx: MetadataTransaction, parent: Node) -> Node:
    """top/{one.txt, sub/{two.txt, deeper/{three.txt}}, empty/}, two blobs, two properties."""
    await tx.insert_blob("first", 10, "0" * 64, NOW)
    await tx.insert_blob("second", 10, "0" * 64, NOW)
    top = await add_node(tx, parent, "top")
    one = await add_file(tx, top, "one.txt", "first")
    sub = await add_node(tx, top, "sub")
    await add_file(tx, sub, "two.txt", "second")
    await tx.retain_blob("second")
    await add_file(tx, await add_node(tx, sub, "deeper"), "three.txt", "second")
    await add_node(tx, top, "empty")
    await tx.set_property(top.id, DeadProperty("urn:x", "color", "<x:color>red</x:color>"))
    await tx.set_property(one.id, DeadProperty("urn:x", "tag", "<x:tag>a</x:tag>"))
    await tx.bump_revisions([top.id], size_delta=30)
    await tx.bump_revisions([sub.id], size_delta=20)
    return top


async def listing(tx: MetadataTransaction, node_id: int) -> dict[tuple[str, ...], tuple[Any, ...]]:
    """What a copy must reproduce: each node's kind, sizes, contents and properties."""
    return {
        relative: (
            node.kind,
            node.size,
            node.blob_id,
            node.sha256,
            node.mtime,
            await tx.properties(node.id),
        )
        for node, relative in await tx.subtree(node_id)
    }


async def test_copy_subtree(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store, "alice")
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        top = await make_tree(tx, await tx.root_node(alice.id))
        assert await tx.file_bytes(top.id) == 30
        target = await tx.root_node(bob.id)
        copy = await tx.copy_subtree(
            top.id, parent_id=target.id, name="copy", owner_id=bob.id, now=NOW + 9
        )
    async with metadata_store.read() as tx:
        assert copy == await tx.child(target.id, "copy")
        assert await listing(tx, copy.id) == await listing(tx, top.id)
        copied = [n for n, _ in await tx.subtree(copy.id)]
        originals = {n.id for n, _ in await tx.subtree(top.id)}
        assert not originals & {n.id for n in copied}
        assert {(n.owner_id, n.revision, n.created_at) for n in copied} == {(bob.id, 1, NOW + 9)}
        assert {b: r for b, (_, _, r) in (await tx.blob_records()).items()} == {
            "first": 2,
            "second": 4,
        }
        assert await tx.blob_records() == {
            b: (10, "0" * 64, n) for b, n in (await tx.blob_reference_counts()).items()
        }


async def test_copy_subtree_of_one_node(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        home = await tx.root_node(alice.id)
        top = await make_tree(tx, home)
        alone = await tx.copy_subtree(
            top.id, parent_id=home.id, name="alone", owner_id=alice.id, now=NOW, recursive=False
        )
        one = await tx.child(top.id, "one.txt")
        assert one is not None
        file_copy = await tx.copy_subtree(
            one.id, parent_id=home.id, name="one", owner_id=alice.id, now=NOW, recursive=False
        )
    async with metadata_store.read() as tx:
        assert await tx.children(alone.id) == []
        assert alone.is_folder and alone.size == 0
        assert await tx.properties(alone.id) == await tx.properties(top.id)
        assert (file_copy.size, file_copy.blob_id) == (10, "first")
        assert await tx.properties(file_copy.id) == await tx.properties(one.id)
        assert (await tx.blob_records())["first"][2] == 2


async def test_copy_subtree_into_itself_copies_it_as_it_was(
    metadata_store: MetadataStore,
) -> None:
    """Through a share mounted twice, a COPY may land inside its own source."""
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        top = await make_tree(tx, await tx.root_node(alice.id))
        before = await listing(tx, top.id)
        sub = await tx.child(top.id, "sub")
        assert sub is not None
        copy = await tx.copy_subtree(
            top.id, parent_id=sub.id, name="again", owner_id=alice.id, now=NOW
        )
    async with metadata_store.read() as tx:
        assert await listing(tx, copy.id) == before
        assert len(await tx.subtree(top.id)) == 2 * len(before)


async def test_copy_subtree_conflicts(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store)
    async with metadata_store.write() as tx:
        home = await tx.root_node(alice.id)
        top = await make_tree(tx, home)
        await add_node(tx, home, "taken")
    with pytest.raises(Conflict):
        async with metadata_store.write() as tx:
            await tx.copy_subtree(
                top.id, parent_id=home.id, name="taken", owner_id=alice.id, now=NOW
            )
    async with metadata_store.write() as tx:
        await tx.set_blob_refcount("second", 0)  # as if released meanwhile
    with pytest.raises(Conflict):
        async with metadata_store.write() as tx:
            await tx.copy_subtree(top.id, parent_id=home.id, name="new", owner_id=alice.id, now=NOW)
    async with metadata_store.read() as tx:
        assert await tx.child(home.id, "new") is None


async def test_lookups_by_many_ids(metadata_store: MetadataStore) -> None:
    """A PROPFIND of a large folder asks for the properties and shares of every entry."""
    alice = await add_user(metadata_store, "alice")
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        home = await tx.root_node(alice.id)
        entries = [await add_node(tx, home, f"entry {i}") for i in range(1200)]
        for entry in entries[::100]:
            await tx.set_property(entry.id, DeadProperty("urn:x", "n", f"<x:n>{entry.id}</x:n>"))
        for entry in entries[::300]:
            await tx.insert_share(
                share_type=0,
                node_id=entry.id,
                node_owner_id=alice.id,
                created_by=alice.id,
                share_with_user=bob.id,
                permissions=1,
                created_at=NOW,
            )
        ids = [entry.id for entry in entries]
        await tx.set_subtree_owner(ids[600:], bob.id)
    async with metadata_store.read() as tx:
        found = await tx.properties_of(ids)
        assert sorted(found) == [entry.id for entry in entries[::100]]
        assert found[ids[100]] == [DeadProperty("urn:x", "n", f"<x:n>{ids[100]}</x:n>")]
        shared = await tx.shares_on(ids)
        assert sorted(share.node_id for share in shared) == [e.id for e in entries[::300]]
        assert await tx.properties_of([]) == {} and await tx.shares_on([]) == []
        owners = [node.owner_id for node in await tx.children(home.id)]
        assert sorted(owners) == [alice.id] * 600 + [bob.id] * 600


async def test_listing_gives_children_and_mount_points(metadata_store: MetadataStore) -> None:
    alice = await add_user(metadata_store, "alice")
    bob = await add_user(metadata_store, "bob")
    async with metadata_store.write() as tx:
        home = await tx.root_node(alice.id)
        a = await add_node(tx, home, "a")
        children = [await add_node(tx, a, name) for name in ("z", "b", "é")]
        await tx.insert_blob("b1", 10, "0" * 64, NOW)
        children.append(await add_file(tx, a, "file", "b1"))
        mount = await share_with(tx, await add_node(tx, await tx.root_node(bob.id), "x"), alice, a)
    async with metadata_store.read() as tx:
        nodes, mounted = await tx.listing(a.id, alice.id)
        assert sorted(nodes, key=lambda n: n.id) == children and mounted == [mount]
        assert await tx.listing(a.id, bob.id) == (nodes, [])
        assert await tx.listing(children[0].id, alice.id) == ([], [])
