"""WebDAV write locks (RFC 4918 sections 6, 7, 9.10, 9.11 and the If header of 10.4)."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from ecrin.app import EcrinApp
from ecrin.core.clock import ManualClock
from tests.support import NS, Dav


def lockinfo(scope: str = "exclusive", owner: str = "alice's editor") -> str:
    return (
        f'<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:{scope}/>'
        "</d:lockscope><d:locktype><d:write/></d:locktype>"
        f"<d:owner>{owner}</d:owner></d:lockinfo>"
    )


async def lock(
    dav: Dav,
    path: str,
    *,
    scope: str = "exclusive",
    depth: str = "0",
    lock_timeout: str | None = None,
    status: int = 200,
) -> str:
    """Take a lock and return its token ('' if refused with the expected status)."""
    headers = {"Depth": depth}
    if lock_timeout is not None:
        headers["Timeout"] = lock_timeout
    response = await dav.request("LOCK", path, body=lockinfo(scope), headers=headers, status=status)
    if status >= 400:
        return ""
    token = response.headers["lock-token"].strip("<>")
    assert token.startswith("opaquelocktoken:")
    assert token in response.text
    return token


def condition(response: httpx.Response) -> str | None:
    """The precondition element named in an error body."""
    root = etree.fromstring(response.content)
    for child in root:
        if isinstance(child.tag, str) and child.tag.startswith("{DAV:}"):
            return child.tag[len("{DAV:}") :]
    return None


def timeouts(response: httpx.Response) -> list[str]:
    return [t.text or "" for t in etree.fromstring(response.content).iterfind(".//d:timeout", NS)]


async def active_tokens(dav: Dav, path: str) -> set[str]:
    response = await dav.propfind(path, ["d:lockdiscovery"], depth="0")
    tree = etree.fromstring(response.content)
    return {h.text or "" for h in tree.iterfind(".//d:activelock/d:locktoken/d:href", NS)}


@pytest.fixture
async def files(alice: Dav) -> Dav:
    await alice.mkcol("/dir")
    await alice.put("/dir/existing.txt", b"inside", status=201)
    await alice.put("/f.txt", b"original", status=201)
    await alice.put("/other.txt", b"other", status=201)
    return alice


# --- conflicts ---------------------------------------------------------------------------


async def test_an_exclusive_lock_excludes_every_other_lock(files: Dav) -> None:
    token = await lock(files, "/f.txt")
    for scope in ("exclusive", "shared"):
        response = await files.request(
            "LOCK", "/f.txt", body=lockinfo(scope), headers={"Depth": "0"}, status=423
        )
        assert condition(response) == "no-conflicting-lock"
    # A depth-infinity lock on the folder above would cover it too.
    await files.mkcol("/dir/sub")
    await files.put("/dir/sub/g.txt", b"g", status=201)
    await lock(files, "/dir/sub/g.txt")
    await lock(files, "/dir", depth="infinity", status=423)
    assert await active_tokens(files, "/f.txt") == {token}


async def test_shared_locks_coexist_and_exclude_exclusive_ones(files: Dav) -> None:
    first = await lock(files, "/f.txt", scope="shared")
    second = await lock(files, "/f.txt", scope="shared")
    assert first != second
    await lock(files, "/f.txt", scope="exclusive", status=423)
    assert await active_tokens(files, "/f.txt") == {first, second}


# --- enforcement -------------------------------------------------------------------------


async def test_writes_to_a_locked_file_need_its_token(files: Dav) -> None:
    token = await lock(files, "/f.txt")
    refused = await files.put("/f.txt", b"no token", status=423)
    assert condition(refused) == "lock-token-submitted"
    await files.delete("/f.txt", status=423)
    await files.move("/f.txt", "/moved.txt", status=423)
    await files.move("/other.txt", "/f.txt", status=423)  # overwriting it is a write too
    await files.copy("/other.txt", "/f.txt", status=423)
    await files.request(
        "PROPPATCH",
        "/f.txt",
        body='<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><x xmlns="urn:x">1</x>'
        "</d:prop></d:set></d:propertyupdate>",
        status=423,
    )
    # Reading is never blocked by a write lock.
    assert (await files.get("/f.txt")).content == b"original"
    await files.propfind("/f.txt", depth="0")
    # A list that holds but does not carry the token: still 423.
    await files.put("/f.txt", b"x", status=423, **{"If": "(Not <DAV:no-lock>)"})
    await files.put("/f.txt", b"x", status=423, **{"If": f"(<{token}x>) (Not <DAV:no-lock>)"})
    assert (await files.get("/f.txt")).content == b"original"
    await files.put("/f.txt", b"with token", status=204, **{"If": f"(<{token}>)"})
    assert (await files.get("/f.txt")).content == b"with token"


async def test_a_false_if_header_is_412_even_on_a_locked_resource(files: Dav) -> None:
    """RFC 4918 10.4.1: the If header is evaluated first (litmus `fail_cond_put`)."""
    await lock(files, "/f.txt")
    etag = await files.prop("/f.txt", "d:getetag")
    for header in (
        f"(<DAV:no-lock> [{etag}])",
        "(<opaquelocktoken:not-the-token>)",
        f'(<DAV:no-lock> ["stale"]) (Not [{etag}])',
    ):
        await files.put("/f.txt", b"x", status=412, **{"If": header})
    assert (await files.get("/f.txt")).content == b"original"


async def test_if_header_with_tokens_and_etags(files: Dav) -> None:
    token = await lock(files, "/f.txt")
    etag = await files.prop("/f.txt", "d:getetag")
    assert etag is not None
    await files.put("/f.txt", b"x", status=412, **{"If": f'(<{token}> ["stale"])'})
    await files.put("/f.txt", b"x", status=412, **{"If": f"(<{token}> Not [{etag}])"})
    updated = await files.put("/f.txt", b"v2", status=204, **{"If": f"(<{token}> [{etag}])"})
    new_etag = updated.headers["etag"]
    # A tagged list names the resource explicitly.
    tagged = f"<http://testserver{files.url('/f.txt')}> (<{token}> [{new_etag}])"
    await files.put("/f.txt", b"v3", status=204, **{"If": tagged})
    # Either list may hold.
    await files.put("/f.txt", b"v4", status=204, **{"If": f'(["stale"]) (<{token}>)'})
    assert (await files.get("/f.txt")).content == b"v4"


async def test_etag_only_if_header_on_an_unlocked_file(files: Dav) -> None:
    etag = await files.prop("/other.txt", "d:getetag")
    await files.put("/other.txt", b"x", status=412, **{"If": '(["stale"])'})
    await files.put("/other.txt", b"x", status=412, **{"If": f"(Not [{etag}])"})
    await files.put("/other.txt", b"y", status=204, **{"If": f"([{etag}])"})
    assert (await files.get("/other.txt")).content == b"y"


async def test_a_depth_infinity_lock_on_a_folder_protects_everything_below(files: Dav) -> None:
    token = await lock(files, "/dir", depth="infinity")
    await files.put("/dir/new.txt", b"x", status=423)
    await files.put("/dir/existing.txt", b"x", status=423)
    await files.mkcol("/dir/sub", status=423)
    await files.delete("/dir/existing.txt", status=423)
    await files.delete("/dir", status=423)
    await files.move("/dir/existing.txt", "/out.txt", status=423)
    await files.move("/other.txt", "/dir/in.txt", status=423)
    await files.copy("/other.txt", "/dir/in.txt", status=423)
    assert await active_tokens(files, "/dir/existing.txt") == {token}
    # With the token, everything is allowed again.
    submit = {"If": f"(<{token}>)"}
    await files.request("MKCOL", "/dir/sub", status=201, headers=submit)
    await files.put("/dir/sub/deep.txt", b"deep", status=201, **submit)
    await files.put("/dir/sub/deeper.txt", b"x", status=423)
    assert (await files.get("/dir/existing.txt")).content == b"inside"


async def test_a_refused_small_put_leaves_nothing_behind(app: EcrinApp, files: Dav) -> None:
    """A small PUT is checked in its commit, after its body is stored: a refusal there
    removes the body again, and the lock answers before the missing parent does."""
    before = {b async for b in app.runtime.blobs.list_blobs()}
    await lock(files, "/dir", depth="infinity")
    await files.put("/dir/new.txt", b"x" * 4096, status=423)
    await files.put("/dir/missing/new.txt", b"x", status=423)
    await files.put("/missing/new.txt", b"x", status=409)
    await files.put("/dir", b"x", status=423)
    assert {b async for b in app.runtime.blobs.list_blobs()} == before


async def test_a_depth_0_lock_on_a_folder_protects_its_membership_only(files: Dav) -> None:
    await lock(files, "/dir", depth="0")
    await files.put("/dir/new.txt", b"x", status=423)  # adds a member
    await files.delete("/dir/existing.txt", status=423)  # removes one
    await files.put("/dir/existing.txt", b"changed", status=204)  # members stay writable
    assert (await files.get("/dir/existing.txt")).content == b"changed"


# --- time, refresh, unlock ---------------------------------------------------------------


async def test_locks_expire_with_their_timeout(files: Dav, clock: ManualClock) -> None:
    token = await lock(files, "/f.txt", lock_timeout="Second-60")
    clock.advance(59)
    await files.put("/f.txt", b"x", status=423)
    assert await active_tokens(files, "/f.txt") == {token}
    clock.advance(2)
    assert await active_tokens(files, "/f.txt") == set()
    await files.put("/f.txt", b"after expiry", status=204)
    await lock(files, "/f.txt")  # a fresh lock can be taken


async def test_timeouts_are_bounded(files: Dav, clock: ManualClock) -> None:
    response = await files.request(
        "LOCK",
        "/f.txt",
        body=lockinfo(),
        headers={"Timeout": "Infinite", "Depth": "0"},
        status=200,
    )
    assert timeouts(response) == ["Second-1800"]  # the configured default
    token = response.headers["lock-token"].strip("<>")
    refreshed = await files.request(
        "LOCK", "/f.txt", headers={"If": f"(<{token}>)", "Timeout": "Second-99999999999"}
    )
    assert refreshed.status_code == 200
    assert timeouts(refreshed) == [f"Second-{7 * 24 * 3600}"]  # the configured maximum


async def test_a_refresh_extends_the_lock(files: Dav, clock: ManualClock) -> None:
    token = await lock(files, "/f.txt", lock_timeout="Second-60")
    clock.advance(50)
    refreshed = await files.request(
        "LOCK", "/f.txt", headers={"If": f"(<{token}>)", "Timeout": "Second-120"}, status=200
    )
    assert timeouts(refreshed) == ["Second-120"]
    assert token in refreshed.text
    clock.advance(100)  # 150 s in: the first timeout has passed, the refreshed one has not
    await files.put("/f.txt", b"x", status=423)
    clock.advance(30)
    await files.put("/f.txt", b"x", status=204)


async def test_a_refresh_needs_the_right_token(files: Dav) -> None:
    token = await lock(files, "/f.txt")
    response = await files.request(
        "LOCK", "/f.txt", headers={"If": f"(<{token}-wrong>)"}, status=412
    )
    assert condition(response) == "lock-token-matches-request-uri"
    await files.request("LOCK", "/other.txt", headers={"If": f"(<{token}>)"}, status=412)
    await files.request("LOCK", "/f.txt", status=400)  # no body and no token


async def test_unlock(files: Dav) -> None:
    token = await lock(files, "/f.txt")
    other = await lock(files, "/other.txt")
    for wrong in (f"<{token}-wrong>", f"<{other}>", "<opaquelocktoken:x>"):
        response = await files.request("UNLOCK", "/f.txt", headers={"Lock-Token": wrong})
        assert response.status_code == 409, wrong
        assert condition(response) == "lock-token-matches-request-uri"
    await files.request("UNLOCK", "/f.txt", status=400)  # no Lock-Token header
    await files.put("/f.txt", b"x", status=423)
    await files.request("UNLOCK", "/f.txt", headers={"Lock-Token": f"<{token}>"}, status=204)
    assert await active_tokens(files, "/f.txt") == set()
    await files.put("/f.txt", b"unlocked", status=204)
    await files.request("UNLOCK", "/f.txt", headers={"Lock-Token": f"<{token}>"}, status=409)
    await files.put("/other.txt", b"x", status=423)  # the other lock is untouched


async def test_locking_an_unmapped_url_creates_an_empty_file(files: Dav) -> None:
    token = await lock(files, "/reserved.txt", status=201)
    response = await files.get("/reserved.txt")
    assert response.content == b""
    await files.put("/reserved.txt", b"x", status=423)
    await files.put("/reserved.txt", b"mine", status=204, **{"If": f"(<{token}>)"})
    await lock(files, "/missing-folder/x.txt", status=409)


async def test_deleting_a_locked_file_with_its_token_drops_the_lock(files: Dav) -> None:
    token = await lock(files, "/f.txt")
    await files.delete("/f.txt", status=204, **{"If": f"(<{token}>)"})
    await files.put("/f.txt", b"new file, no lock", status=201)
    assert await active_tokens(files, "/f.txt") == set()
