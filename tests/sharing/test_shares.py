"""Shares with users and groups: where they appear, what they allow, how they end."""

from __future__ import annotations

import os

from ecrin.app import EcrinApp
from ecrin.core.clock import ManualClock
from tests.dav.test_propfind_rendering import (
    assert_the_same_without_details,
    make_detailed_folder,
)
from tests.sharing.helpers import link_dav, ocs, share
from tests.support import PASSWORD, Dav, hrefs


async def test_user_share_appears_in_the_sharees_tree_and_edits_are_shared(
    alice: Dav, bob: Dav
) -> None:
    await alice.mkcol("/proj")
    await alice.put("/proj/plan.txt", b"v1", status=201)
    created = await share(alice, "/proj", 0, shareWith="bob", permissions=31)
    assert created["share_with"] == "bob" and created["item_type"] == "folder"

    listing = await bob.propfind("/", ["oc:permissions", "oc:fileid"])
    assert "/remote.php/dav/files/bob/proj/" in hrefs(listing)
    assert (await bob.get("/proj/plan.txt")).content == b"v1"
    assert (await bob.prop("/proj", "oc:permissions") or "").startswith("S")

    await bob.put("/proj/plan.txt", b"v2 by bob", status=204)
    assert (await alice.get("/proj/plan.txt")).content == b"v2 by bob"
    await bob.put("/proj/new.txt", b"new", status=201)
    assert (await alice.get("/proj/new.txt")).content == b"new"
    assert await alice.prop("/proj/new.txt", "oc:fileid") == await bob.prop(
        "/proj/new.txt", "oc:fileid"
    )


async def test_owner_change_moves_the_sharees_etags(alice: Dav, bob: Dav) -> None:
    await alice.mkcol("/proj")
    await share(alice, "/proj", 0, shareWith="bob", permissions=1)
    before_root = await bob.prop("/", "d:getetag")
    before = await bob.prop("/proj", "d:getetag")
    await alice.put("/proj/x.txt", b"x", status=201)
    assert await bob.prop("/proj", "d:getetag") != before
    assert await bob.prop("/", "d:getetag") != before_root


async def test_sharee_renames_and_moves_the_mount_point_for_themselves(
    alice: Dav, bob: Dav
) -> None:
    await alice.mkcol("/proj")
    await share(alice, "/proj", 0, shareWith="bob", permissions=1)
    await bob.mkcol("/Shared")
    await bob.move("/proj", "/Shared/Project X", status=201)
    await bob.propfind("/Shared/Project X", depth="0")
    await alice.propfind("/proj", depth="0")  # unchanged for the owner
    await bob.propfind("/proj", depth="0", status=404)


async def test_read_only_share_refuses_writes(alice: Dav, bob: Dav) -> None:
    await alice.mkcol("/proj")
    await alice.put("/proj/a.txt", b"a", status=201)
    await share(alice, "/proj", 0, shareWith="bob", permissions=1)
    await bob.put("/proj/a.txt", b"changed", status=403)
    await bob.put("/proj/b.txt", b"b", status=403)
    await bob.delete("/proj/a.txt", status=403)
    await bob.mkcol("/proj/sub", status=403)
    assert (await alice.get("/proj/a.txt")).content == b"a"


async def test_group_share_reaches_members_added_later(app: EcrinApp, alice: Dav, bob: Dav) -> None:
    groups = app.runtime.services.groups
    await groups.create("class")
    await alice.mkcol("/lessons")
    await share(alice, "/lessons", 1, shareWith="class", permissions=1)
    await bob.propfind("/lessons", depth="0", status=404)
    await groups.add_member("class", "bob")
    await bob.propfind("/lessons", depth="0")
    await groups.remove_member("class", "bob")
    await bob.propfind("/lessons", depth="0", status=404)


async def test_reshare_cannot_escalate_and_revocation_cascades(
    app: EcrinApp, alice: Dav, bob: Dav
) -> None:
    await app.runtime.services.accounts.create_user("carol", PASSWORD)
    carol = Dav(alice.client, "carol", PASSWORD)
    await alice.mkcol("/proj")
    await alice.put("/proj/a.txt", b"a", status=201)
    first = await share(alice, "/proj", 0, shareWith="bob", permissions=1 | 16)
    # bob holds read+share: he may not hand out update
    await share(bob, "/proj", 0, status=403, shareWith="carol", permissions=1 | 2)
    reshare = await share(bob, "/proj", 0, shareWith="carol", permissions=1)
    assert reshare["parent"] == int(first["id"])
    assert (await carol.get("/proj/a.txt")).content == b"a"
    # alice removes bob's right to reshare: carol loses access at once
    await ocs(alice, "PUT", f"/shares/{first['id']}", permissions=1)
    await carol.get("/proj/a.txt", status=404)
    # and revoking bob's share removes carol's share entirely
    await ocs(alice, "PUT", f"/shares/{first['id']}", permissions=17)
    await ocs(alice, "DELETE", f"/shares/{first['id']}")
    await carol.propfind("/proj", depth="0", status=404)
    await ocs(carol, "GET", f"/shares/{reshare['id']}", status=404)


async def test_share_types_show_on_the_sharers_items(alice: Dav, bob: Dav) -> None:
    await alice.mkcol("/proj")
    await share(alice, "/proj", 0, shareWith="bob")
    await share(alice, "/proj", 3)
    response = await alice.propfind("/", ["oc:share-types"])
    assert "<oc:share-type>0</oc:share-type><oc:share-type>3</oc:share-type>" in response.text


async def test_public_links_read_write_and_expiry(alice: Dav, clock: ManualClock) -> None:
    await alice.mkcol("/pub")
    await alice.put("/pub/readme.txt", b"hello", status=201)
    read_only = await share(alice, "/pub", 3)
    visitor = link_dav(alice.client, read_only["token"])
    assert (await visitor.get("/readme.txt")).content == b"hello"
    await visitor.put("/new.txt", b"x", status=403)

    writable = await share(alice, "/pub", 3, publicUpload="true")
    editor = link_dav(alice.client, writable["token"])
    await editor.put("/new.txt", b"from a link", status=201)
    assert (await alice.get("/pub/new.txt")).content == b"from a link"

    expiring = await share(alice, "/pub", 3, expireDate="2023-11-16")
    soon = link_dav(alice.client, expiring["token"])
    await soon.get("/readme.txt")
    clock.advance(3 * 86400)
    await soon.get("/readme.txt", status=404)


async def test_link_password_is_required_and_guessing_is_throttled(alice: Dav) -> None:
    await alice.mkcol("/secret")
    await alice.put("/secret/s.txt", b"s", status=201)
    link = await share(alice, "/secret", 3, password="opensesame")
    await link_dav(alice.client, link["token"]).get("/s.txt", status=401)
    await link_dav(alice.client, link["token"], "opensesame").get("/s.txt")
    for _ in range(5):
        await link_dav(alice.client, link["token"], "wrong-guess").get("/s.txt", status=401)
    await link_dav(alice.client, link["token"], "opensesame").get("/s.txt", status=429)


async def test_upload_only_link_never_reveals_names_or_contents(alice: Dav) -> None:
    await alice.mkcol("/drop")
    await alice.put("/drop/existing.txt", b"private", status=201)
    link = await share(alice, "/drop", 3, permissions=4)
    visitor = link_dav(alice.client, link["token"])
    await visitor.propfind("/", depth="1", status=404)
    await visitor.get("/existing.txt", status=404)
    await visitor.propfind("/existing.txt", depth="0", status=404)
    await visitor.put("/homework.pdf", b"mine", status=201)
    # a name clash is not revealed: the upload lands beside it
    await visitor.put("/existing.txt", b"other", status=201)
    assert (await alice.get("/drop/existing.txt")).content == b"private"
    assert (await alice.get("/drop/homework.pdf")).content == b"mine"
    page = await alice.client.get(f"/s/{link['token']}")
    assert page.status_code == 200 and "existing.txt" not in page.text


async def test_link_page_downloads_small_and_large_files(alice: Dav) -> None:
    # A small file's bytes are in the database; a large one's are sent from the disk.
    large = os.urandom(3 * 1024 * 1024 + 17)
    await alice.mkcol("/pub")
    await alice.put("/pub/note.txt", b"small", status=201)
    await alice.put("/pub/film.bin", large, status=201)
    link = await share(alice, "/pub", 3, permissions=1)
    for name, body in (("note.txt", b"small"), ("film.bin", large)):
        got = await alice.client.get(f"/s/{link['token']}/download", params={"path": name})
        assert got.status_code == 200
        assert got.headers["content-length"] == str(len(body))
        assert name in got.headers["content-disposition"]
        assert got.content == body
    missing = await alice.client.get(f"/s/{link['token']}/download", params={"path": "gone"})
    assert missing.status_code == 404


async def test_server_can_enforce_link_passwords(app: EcrinApp, alice: Dav) -> None:
    import dataclasses

    from ecrin.services.sharing import LinkPolicy

    sharing = app.runtime.services.sharing
    sharing.policy = dataclasses.replace(LinkPolicy(), enforce_password=True, max_expiry_days=7)
    await alice.mkcol("/pub")
    await share(alice, "/pub", 3, status=400)
    await share(alice, "/pub", 3, status=400, password="long-enough-pw")  # no expiry given
    await share(alice, "/pub", 3, password="long-enough-pw", expireDate="2023-11-18")


async def test_a_recipients_listing_without_details_matches_one_with_them(
    alice: Dav, bob: Dav
) -> None:
    # The shared folder is alice's: bob's listing of it reads its children without his
    # mount points (`MetadataTransaction.children`).
    await make_detailed_folder(alice, "/d")
    await share(alice, "/d", 0, shareWith="bob", permissions=31)
    await assert_the_same_without_details(bob, "/d")


async def test_a_shared_file_reads_the_same_for_everyone(alice: Dav, bob: Dav) -> None:
    # Bob's path ends at the mount point, the visitor's at the link's root: neither walk
    # reaches the file by a name, as the owner's does.
    await alice.put("/note.txt", b"small enough for the database", status=201)
    await share(alice, "/note.txt", 0, shareWith="bob", permissions=1)
    link = await share(alice, "/note.txt", 3)
    await alice.put("/note.txt", b"edited, still small", status=204)

    assert (await alice.get("/note.txt")).content == b"edited, still small"
    assert (await bob.get("/note.txt")).content == b"edited, still small"
    visitor = link_dav(alice.client, link["token"])
    assert (await visitor.get("")).content == b"edited, still small"
