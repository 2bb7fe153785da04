"""WebDAV locks on shared items: the owner, every recipient and a link's visitors see and
respect the same locks, whatever path each reaches the item by."""

from __future__ import annotations

from ecrin.app import EcrinApp
from tests.dav.test_locks import active_tokens, lock
from tests.sharing.helpers import link_dav, ocs, share
from tests.support import PASSWORD, Dav, hrefs

EDIT = 15  # read, update, create, delete


async def shared_project(alice: Dav, bob: Dav, where: str = "/proj") -> None:
    await alice.mkcol(where)
    await alice.put(f"{where}/doc.odt", b"v1", status=201)
    await share(alice, where, 0, shareWith="bob", permissions=EDIT)


async def test_the_owners_lock_holds_for_a_recipient(alice: Dav, bob: Dav) -> None:
    await shared_project(alice, bob)
    token = await lock(alice, "/proj/doc.odt")
    assert await active_tokens(bob, "/proj/doc.odt") == {token}
    await bob.put("/proj/doc.odt", b"bob's", status=423)
    await bob.delete("/proj/doc.odt", status=423)
    await bob.move("/proj/doc.odt", "/proj/renamed.odt", status=423)
    await lock(bob, "/proj/doc.odt", status=423)
    # The token is the owner's: submitting it does not make bob its holder.
    await bob.put("/proj/doc.odt", b"bob's", status=423, **{"If": f"(<{token}>)"})
    assert (await alice.get("/proj/doc.odt")).content == b"v1"

    await alice.request("UNLOCK", "/proj/doc.odt", headers={"Lock-Token": f"<{token}>"})
    await bob.put("/proj/doc.odt", b"bob's", status=204)


async def test_a_recipients_lock_holds_for_the_owner(alice: Dav, bob: Dav) -> None:
    await shared_project(alice, bob)
    token = await lock(bob, "/proj/doc.odt")
    assert await active_tokens(alice, "/proj/doc.odt") == {token}
    await alice.put("/proj/doc.odt", b"alice's", status=423)
    await lock(alice, "/proj", depth="infinity", status=423)
    await bob.put("/proj/doc.odt", b"bob's", status=204, **{"If": f"(<{token}>)"})
    # Refreshed and released through the recipient's path.
    refreshed = await bob.request(
        "LOCK", "/proj/doc.odt", headers={"If": f"(<{token}>)", "Timeout": "Second-60"}
    )
    assert refreshed.status_code == 200 and "Second-60" in refreshed.text
    await bob.request("UNLOCK", "/proj/doc.odt", headers={"Lock-Token": f"<{token}>"}, status=204)
    await alice.put("/proj/doc.odt", b"alice's", status=204)


async def test_a_lock_above_the_shared_folder_covers_it(alice: Dav, bob: Dav) -> None:
    await alice.mkcol("/work")
    await shared_project(alice, bob, "/work/proj")
    token = await lock(alice, "/work", depth="infinity")
    assert await active_tokens(bob, "/proj") == {token}
    # Listed with the folder that holds the mount point, too.
    listing = await bob.propfind("/", ["d:lockdiscovery"], depth="1")
    assert listing.text.count(token) == 1 and "/bob/proj/" in listing.text
    assert await active_tokens(bob, "/proj/doc.odt") == {token}
    await bob.put("/proj/new.txt", b"new", status=423)
    await bob.mkcol("/proj/sub", status=423)
    await bob.put("/proj/doc.odt", b"changed", status=423)


async def test_a_depth_infinity_lock_on_the_shared_folder_covers_new_members(
    alice: Dav, bob: Dav
) -> None:
    await shared_project(alice, bob)
    token = await lock(bob, "/proj", depth="infinity")
    await alice.put("/proj/new.txt", b"new", status=423)
    await alice.mkcol("/proj/sub", status=423)
    await bob.put("/proj/new.txt", b"new", status=201, **{"If": f"(<{token}>)"})
    # A large body takes the other road (the checks before the body is read).
    large = b"x" * 300_000
    await alice.put("/proj/big.bin", large, status=423)
    await bob.put("/proj/big.bin", large, status=201, **{"If": f"(<{token}>)"})


async def test_moving_the_mount_point_keeps_the_owners_locks(alice: Dav, bob: Dav) -> None:
    await shared_project(alice, bob)
    token = await lock(alice, "/proj/doc.odt")
    await bob.move("/proj", "/renamed", status=201)
    assert await active_tokens(bob, "/renamed/doc.odt") == {token}
    await bob.put("/renamed/doc.odt", b"bob's", status=423)
    await alice.put("/proj/doc.odt", b"alice's", status=204, **{"If": f"(<{token}>)"})


async def test_deleting_a_locked_shared_file_with_its_token_drops_the_lock(
    alice: Dav, bob: Dav
) -> None:
    await shared_project(alice, bob)
    token = await lock(bob, "/proj/doc.odt")
    await bob.delete("/proj/doc.odt", status=204, **{"If": f"(<{token}>)"})
    await alice.put("/proj/doc.odt", b"a new one", status=201)
    assert await active_tokens(alice, "/proj/doc.odt") == set()


async def test_link_visitors_meet_the_same_locks(alice: Dav, bob: Dav) -> None:
    await alice.mkcol("/pub")
    await alice.put("/pub/a.txt", b"a", status=201)
    await alice.put("/pub/b.txt", b"b", status=201)
    await share(alice, "/pub", 0, shareWith="bob", permissions=EDIT)
    link = await share(alice, "/pub", 3, permissions=EDIT)
    visitor = link_dav(alice.client, link["token"])

    owners = await lock(alice, "/pub/a.txt")
    recipients = await lock(bob, "/pub/b.txt")
    assert await active_tokens(visitor, "/a.txt") == {owners}
    assert await active_tokens(visitor, "/b.txt") == {recipients}
    await visitor.put("/a.txt", b"visitor's", status=423)
    await visitor.put("/b.txt", b"x" * 300_000, status=423)
    await visitor.delete("/b.txt", status=423)
    await visitor.put("/c.txt", b"new", status=201)
    # An anonymous visitor has no identity to hold a lock by.
    await lock(visitor, "/c.txt", status=405)


async def test_a_reshare_meets_the_same_locks(app: EcrinApp, alice: Dav, bob: Dav) -> None:
    await app.runtime.services.accounts.create_user("carol", PASSWORD)
    carol = Dav(alice.client, "carol", PASSWORD)
    await alice.mkcol("/proj")
    await alice.mkcol("/proj/sub")
    await alice.put("/proj/sub/doc.odt", b"v1", status=201)
    await share(alice, "/proj", 0, shareWith="bob", permissions=EDIT | 16)
    await share(bob, "/proj/sub", 0, shareWith="carol", permissions=EDIT)

    owners = await lock(alice, "/proj/sub/doc.odt")
    assert await active_tokens(carol, "/sub/doc.odt") == {owners}
    await carol.put("/sub/doc.odt", b"carol's", status=423)

    await lock(carol, "/sub", depth="infinity", status=423)  # alice's lock is inside

    await alice.request("UNLOCK", "/proj/sub/doc.odt", headers={"Lock-Token": f"<{owners}>"})
    carols = await lock(carol, "/sub", depth="infinity")
    await bob.put("/proj/sub/new.txt", b"new", status=423)
    await alice.mkcol("/proj/sub/dir", status=423)
    assert await active_tokens(bob, "/proj/sub/doc.odt") == {carols}


async def test_a_recipients_lock_does_not_outlive_them(app: EcrinApp, alice: Dav, bob: Dav) -> None:
    await shared_project(alice, bob)
    await lock(bob, "/proj/doc.odt", lock_timeout="Second-86400")
    await app.runtime.services.accounts.delete_user("bob")
    assert await active_tokens(alice, "/proj/doc.odt") == set()
    await alice.put("/proj/doc.odt", b"alice's", status=204)


async def test_the_owner_can_release_a_lock_left_behind(alice: Dav, bob: Dav) -> None:
    """A recipient who loses the share leaves their locks; its owner sees their tokens, and
    releases them with UNLOCK."""
    await shared_project(alice, bob)
    await lock(bob, "/proj/doc.odt")
    shares = await ocs(alice, "GET", "/shares")
    await ocs(alice, "DELETE", f"/shares/{shares[0]['id']}")
    (left,) = await active_tokens(alice, "/proj/doc.odt")
    await alice.put("/proj/doc.odt", b"alice's", status=423)
    await alice.request("UNLOCK", "/proj/doc.odt", headers={"Lock-Token": f"<{left}>"}, status=204)
    await alice.put("/proj/doc.odt", b"alice's", status=204)


async def test_only_the_holder_or_the_owner_removes_a_lock(
    app: EcrinApp, alice: Dav, bob: Dav
) -> None:
    await app.runtime.services.accounts.create_user("carol", PASSWORD)
    carol = Dav(alice.client, "carol", PASSWORD)
    await shared_project(alice, bob)
    await share(alice, "/proj", 0, shareWith="carol", permissions=1)  # read only

    owners = await lock(alice, "/proj/doc.odt")
    for someone in (bob, carol):
        await someone.request("LOCK", "/proj/doc.odt", headers={"If": f"(<{owners}>)"}, status=412)
        refused = await someone.request(
            "UNLOCK", "/proj/doc.odt", headers={"Lock-Token": f"<{owners}>"}, status=403
        )
        assert "holder" in refused.text
    await alice.request(
        "UNLOCK", "/proj/doc.odt", headers={"Lock-Token": f"<{owners}>"}, status=204
    )

    bobs = await lock(bob, "/proj/doc.odt")
    await carol.request("UNLOCK", "/proj/doc.odt", headers={"Lock-Token": f"<{bobs}>"}, status=403)
    await alice.request("UNLOCK", "/proj/doc.odt", headers={"Lock-Token": f"<{bobs}>"}, status=204)


async def test_restoring_a_version_respects_others_locks(alice: Dav, bob: Dav) -> None:
    await shared_project(alice, bob)
    await alice.put("/proj/doc.odt", b"v2", status=204)
    file_id = await alice.prop("/proj/doc.odt", "oc:fileid")
    listing = await alice.client.request(
        "PROPFIND", f"/remote.php/dav/versions/alice/versions/{file_id}", auth=alice.auth
    )
    (version_id,) = [h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs(listing)[1:]]

    async def restore(dav: Dav, status: int) -> None:
        versions = f"/remote.php/dav/versions/{dav.user}"
        response = await dav.client.request(
            "MOVE",
            f"{versions}/versions/{file_id}/{version_id}",
            auth=dav.auth,
            headers={"Destination": f"{versions}/restore/target"},
        )
        assert response.status_code == status, response.text

    await lock(bob, "/proj/doc.odt")
    await restore(alice, 423)
    assert (await alice.get("/proj/doc.odt")).content == b"v2"
    await restore(bob, 204)  # the holder has no token to send here, and needs none
    assert (await alice.get("/proj/doc.odt")).content == b"v1"


async def test_restoring_from_the_trash_respects_others_locks(alice: Dav, bob: Dav) -> None:
    await shared_project(alice, bob)
    await alice.put("/proj/old.txt", b"old", status=201)
    await alice.delete("/proj/old.txt")
    trash = "/remote.php/dav/trashbin/alice/trash"
    listing = await alice.client.request("PROPFIND", trash, auth=alice.auth)
    (item,) = [h for h in hrefs(listing) if h.rstrip("/") != trash]
    destination = f"/remote.php/dav/trashbin/alice/restore/{item.rsplit('/', 1)[1]}"

    async def restore(status: int) -> None:
        response = await alice.client.request(
            "MOVE", item, auth=alice.auth, headers={"Destination": destination}
        )
        assert response.status_code == status, response.text

    token = await lock(bob, "/proj")  # depth 0: the folder's members
    await restore(423)
    await bob.request("UNLOCK", "/proj", headers={"Lock-Token": f"<{token}>"}, status=204)
    await restore(201)
    assert (await bob.get("/proj/old.txt")).content == b"old"
