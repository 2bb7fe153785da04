"""One user never reaches another's files, and anonymous callers reach nothing.

Every verb bob aims at alice's tree answers 404, whether the target exists or not, exactly
as for a user that does not exist: nothing about alice's files leaks, and nothing changes.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support import PASSWORD, Dav, hrefs

LOCK_BODY = (
    '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
    "<d:locktype><d:write/></d:locktype><d:owner>bob</d:owner></d:lockinfo>"
)
PROPPATCH_BODY = (
    '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x">'
    "<d:set><d:prop><x:tag>bob was here</x:tag></d:prop></d:set></d:propertyupdate>"
)
VERBS: list[tuple[str, dict[str, str], str]] = [
    ("GET", {}, ""),
    ("HEAD", {}, ""),
    ("OPTIONS", {}, ""),
    ("PROPFIND", {"Depth": "0"}, ""),
    ("PROPFIND", {"Depth": "1"}, ""),
    ("PUT", {}, "overwritten by bob"),
    ("MKCOL", {}, ""),
    ("DELETE", {}, ""),
    ("PROPPATCH", {}, PROPPATCH_BODY),
    ("LOCK", {"Depth": "0"}, LOCK_BODY),
    ("UNLOCK", {"Lock-Token": "<opaquelocktoken:guess>"}, ""),
]
TARGETS = ["/secret.txt", "/private/", "/private/inner.txt", "/missing.txt", "/"]


@pytest.fixture
async def alice_files(alice: Dav) -> Dav:
    await alice.put("/secret.txt", b"alice's secret", status=201)
    await alice.mkcol("/private")
    await alice.put("/private/inner.txt", b"inner", status=201)
    return alice


async def _snapshot(alice: Dav) -> tuple[list[str], str | None, bytes, bytes]:
    listing = await alice.propfind("/", ["d:getetag"], depth="1")
    return (
        hrefs(listing),
        await alice.prop("/", "d:getetag"),
        (await alice.get("/secret.txt")).content,
        (await alice.get("/private/inner.txt")).content,
    )


def _as(client: httpx.AsyncClient, user: str, home: str, prefix: str) -> Dav:
    return Dav(client, user, PASSWORD, prefix=f"{prefix}/{home}")


@pytest.mark.parametrize("prefix", ["/remote.php/dav/files", "/dav/files"])
async def test_every_verb_on_another_users_files_is_404(
    alice_files: Dav, bob: Dav, client: httpx.AsyncClient, prefix: str
) -> None:
    before = await _snapshot(alice_files)
    intruder = _as(client, "bob", "alice", prefix)
    for method, headers, body in VERBS:
        for target in TARGETS:
            response = await intruder.request(method, target, body=body, headers=headers)
            assert response.status_code == 404, f"{method} {target}: {response.status_code}"
            if method != "HEAD":
                assert b"bob was here" not in response.content
                assert b"secret" not in response.content
    assert await _snapshot(alice_files) == before
    assert await alice_files.prop("/secret.txt", "d:lockdiscovery") == ""


async def test_answers_do_not_reveal_what_exists(
    alice_files: Dav, bob: Dav, client: httpx.AsyncClient
) -> None:
    """An existing file, a missing one and a missing user look exactly the same."""
    prefix = "/remote.php/dav/files"
    for method, headers, body in VERBS:
        answers = set()
        for home, target in [("alice", "/secret.txt"), ("alice", "/nope"), ("nobody", "/x")]:
            response = await _as(client, "bob", home, prefix).request(
                method, target, body=body, headers=headers
            )
            answers.add((response.status_code, response.content))
        assert len(answers) == 1, (method, answers)


async def test_move_and_copy_out_of_another_users_tree_are_404(
    alice_files: Dav, bob: Dav, client: httpx.AsyncClient
) -> None:
    before = await _snapshot(alice_files)
    intruder = _as(client, "bob", "alice", "/remote.php/dav/files")
    own = bob.url("/loot.txt")
    for method in ("MOVE", "COPY"):
        for target in ("/secret.txt", "/private/"):
            response = await intruder.request(method, target, headers={"Destination": own})
            assert response.status_code == 404, (method, target)
    await bob.get("/loot.txt", status=404)
    assert await _snapshot(alice_files) == before


async def test_move_and_copy_into_another_users_tree_are_refused(
    alice_files: Dav, bob: Dav
) -> None:
    """A Destination outside the caller's home is refused (403) before anything is looked
    up: the same answer whether the place exists, is missing, or the user is unknown."""
    await bob.put("/mine.txt", b"bob's", status=201)
    before = await _snapshot(alice_files)
    for method in ("MOVE", "COPY"):
        answers = set()
        for destination in (
            "http://testserver/remote.php/dav/files/alice/secret.txt",
            "/remote.php/dav/files/alice/private/new.txt",
            "/remote.php/dav/files/alice/missing/new.txt",
            "/dav/files/alice/new.txt",
            "/remote.php/dav/files/nobody/new.txt",
        ):
            response = await bob.request(
                method, "/mine.txt", headers={"Destination": destination, "Overwrite": "T"}
            )
            assert response.status_code == 403, (method, destination, response.text)
            answers.add(response.content)
        assert len(answers) == 1
    assert await _snapshot(alice_files) == before
    assert (await bob.get("/mine.txt")).content == b"bob's"


async def test_legacy_webdav_root_is_the_callers_own_home(alice_files: Dav, bob: Dav) -> None:
    await bob.put("/bobs.txt", b"b", status=201)
    legacy = Dav(bob.client, "bob", PASSWORD, prefix="/remote.php/webdav")
    listing = hrefs(await legacy.propfind("/", depth="1"))
    assert listing == ["/remote.php/webdav/", "/remote.php/webdav/bobs.txt"]
    await legacy.get("/secret.txt", status=404)


async def test_unauthenticated_requests_get_401_with_a_challenge(
    alice_files: Dav, client: httpx.AsyncClient
) -> None:
    """Anonymous: every verb. Bad credentials (each costs an argon2 check): a few verbs."""
    before = await _snapshot(alice_files)
    attempts: list[tuple[str, tuple[str, str] | None]] = [
        (method, None) for method in [m for m, _, _ in VERBS] + ["MOVE", "COPY"]
    ]
    for bad in (("alice", "wrong password"), ("nobody", PASSWORD), ("alice", "")):
        attempts += [(method, bad) for method in ("GET", "PUT", "PROPFIND", "DELETE")]
    for method, credentials in attempts:
        response = await client.request(
            method,
            "/remote.php/dav/files/alice/secret.txt",
            headers={"Destination": "/remote.php/dav/files/alice/stolen.txt", "Depth": "0"},
            content=b"overwritten" if method == "PUT" else b"",
            auth=credentials,
        )
        assert response.status_code == 401, (method, credentials)
        assert response.headers["www-authenticate"].startswith("Basic realm="), method
        assert b"secret" not in response.content
    assert await _snapshot(alice_files) == before


async def test_malformed_credentials_are_401(alice_files: Dav, client: httpx.AsyncClient) -> None:
    for header in ("Basic !!!notbase64", "Basic " + "YWxpY2U=", "Bearer abc", "Basic"):
        response = await client.get(
            "/remote.php/dav/files/alice/secret.txt", headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert "www-authenticate" in response.headers
