"""Every endpoint that takes a path, file id, share id or trash item, tried by every kind of
actor. What each actor may do is derived from the permission model (`Permission`), not
listed by hand: 0 unauthorised successes, and 404 wherever the actor may not even read (so
existence does not leak)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from ecrin.app import EcrinApp
from ecrin.core.clock import ManualClock
from ecrin.core.permissions import Permission as P
from tests.sharing.helpers import OCS, share
from tests.support import PASSWORD, Dav

R, U, C, D, S = P.READ, P.UPDATE, P.CREATE, P.DELETE, P.SHARE


@dataclass
class Actor:
    name: str
    permissions: P
    dav: Dav  # speaking at the URL this actor would use for alice's /proj
    is_user: bool = True
    # statuses that also count as "nothing leaked": 409 in one's own empty tree, 405 for
    # methods links never accept
    neutral: tuple[int, ...] = ()


@dataclass
class Case:
    """One request against a fresh target; `prepare` returns the target's name."""

    name: str
    required: P
    run: Callable[[Actor, str, World], Awaitable[httpx.Response]]
    users_only: bool = False  # endpoints links cannot reach at all


@dataclass
class World:
    app: EcrinApp
    alice: Dav
    counter: itertools.count[int]

    async def fresh_file(self) -> tuple[str, str]:
        name = f"t{next(self.counter)}.txt"
        await self.alice.put(f"/proj/{name}", b"original", status=201)
        file_id = await self.alice.prop(f"/proj/{name}", "oc:fileid")
        assert file_id
        return name, file_id


async def _versions(actor: Actor, name: str, world: World) -> httpx.Response:
    file_id = await world.alice.prop(f"/proj/{name}", "oc:fileid")
    user = actor.dav.user
    return await actor.dav.client.request(
        "PROPFIND",
        f"/remote.php/dav/versions/{user}/versions/{file_id}",
        auth=actor.dav.auth,
        headers={"Depth": "1"},
    )


async def _share_file(actor: Actor, name: str, _world: World) -> httpx.Response:
    return await actor.dav.client.post(
        f"{OCS}/shares",
        params={"format": "json"},
        auth=actor.dav.credentials,
        data={"path": f"/proj/{name}", "shareType": "3", "permissions": "1"},
    )


CASES = [
    Case("PROPFIND file", R, lambda a, n, _: a.dav.propfind(f"/proj/{n}", depth="0", status=None)),
    Case("PROPFIND folder", R, lambda a, _n, _w: a.dav.propfind("/proj", status=None)),
    Case("GET", R, lambda a, n, _: a.dav.get(f"/proj/{n}", status=None)),
    Case("PUT overwrite", R | U, lambda a, n, _: a.dav.put(f"/proj/{n}", b"changed")),
    Case("PUT new", C, lambda a, n, _: a.dav.put(f"/proj/new-{n}", b"new")),
    Case("MKCOL", C, lambda a, n, _: a.dav.mkcol(f"/proj/dir-{n}", status=None)),
    Case("DELETE", R | D, lambda a, n, _: a.dav.delete(f"/proj/{n}", status=None)),
    Case("MOVE rename", R | U, lambda a, n, _: a.dav.move(f"/proj/{n}", f"/proj/r-{n}")),
    Case("COPY", R | C, lambda a, n, _: a.dav.copy(f"/proj/{n}", f"/proj/c-{n}")),
    Case(
        "PROPPATCH",
        R | U,
        lambda a, n, _: a.dav.request(
            "PROPPATCH",
            f"/proj/{n}",
            body='<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"'
            ' xmlns:x="urn:x"><d:set><d:prop><x:k>v</x:k></d:prop></d:set></d:propertyupdate>',
        ),
    ),
    Case(
        "LOCK",
        R | U,
        lambda a, n, _: a.dav.request(
            "LOCK",
            f"/proj/{n}",
            body='<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:">'
            "<d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
            "</d:lockinfo>",
        ),
    ),
    Case("versions by file id", R, _versions, users_only=True),
    Case("share (OCS)", R | S, _share_file, users_only=True),
]


async def test_permission_matrix(app: EcrinApp, alice: Dav, clock: ManualClock) -> None:
    client = alice.client
    accounts = app.runtime.services.accounts
    await alice.mkcol("/proj")
    actors = [Actor("owner", P.ALL, alice)]
    for permissions in (R, R | U, R | C, R | D, R | S, P.ALL):
        name = f"sharee{int(permissions)}"
        await accounts.create_user(name, PASSWORD)
        await share(alice, "/proj", 0, shareWith=name, permissions=int(permissions))
        actors.append(
            Actor(f"sharee with {permissions!r}", permissions, Dav(client, name, PASSWORD))
        )
    await accounts.create_user("mallory", PASSWORD)
    actors.append(
        Actor(
            "other user",
            P.NONE,
            Dav(client, "mallory", PASSWORD, prefix="/remote.php/dav/files/alice"),
        )
    )
    actors.append(
        Actor("other user, own URL", P.NONE, Dav(client, "mallory", PASSWORD), neutral=(409,))
    )
    actors.append(
        Actor(
            "anonymous",
            P.NONE,
            Dav(client, "", "", prefix="/remote.php/dav/files/alice"),
            is_user=False,
        )
    )
    read_link = await share(alice, "/proj", 3)
    drop_link = await share(alice, "/proj", 3, permissions=4)
    expired = await share(alice, "/proj", 3, expireDate="2023-11-15")
    for label, link, permissions in (
        ("read link", read_link, R),
        ("file-drop link", drop_link, C),
        ("expired link", expired, P.NONE),
    ):
        # links address /proj as their root: a /proj prefix segment maps onto it
        dav = Dav(client, "anonymous", "", prefix=f"/public.php/dav/files/{link['token']}")
        dav.url = _link_url(dav.prefix)  # type: ignore[method-assign, assignment]
        actors.append(Actor(label, permissions, dav, is_user=False, neutral=(405,)))
    clock.advance(2 * 86400)  # the expired link's day is over

    world = World(app, alice, itertools.count())
    failures: list[str] = []
    for case, actor in itertools.product(CASES, actors):
        if case.users_only and not actor.is_user:
            continue
        name, _ = await world.fresh_file()
        response = await case.run(actor, name, world)
        allowed = case.required in actor.permissions
        succeeded = 200 <= response.status_code < 300
        where = f"{case.name} as {actor.name}: {response.status_code}"
        if allowed and not succeeded:
            failures.append(f"refused but allowed — {where}")
        if _blind_drop(case, actor):
            assert response.status_code == 201  # landed beside; checked unchanged below
        elif not allowed and succeeded:
            failures.append(f"UNAUTHORISED SUCCESS — {where}")
        hidden = (401, 404, *actor.neutral)
        if (
            not allowed
            and not _blind_drop(case, actor)
            and R not in actor.permissions
            and response.status_code not in hidden
        ):
            failures.append(f"leaks existence (expected 404/401) — {where}")
        if (not allowed or _blind_drop(case, actor)) and (
            await world.alice.get(f"/proj/{name}", status=None)
        ).content != (b"original"):
            failures.append(f"denied but the file changed — {where}")
    assert not failures, "\n".join(failures)


def _blind_drop(case: Case, actor: Actor) -> bool:
    """A file drop may PUT onto a taken name: it lands beside, without touching the file."""
    return case.name == "PUT overwrite" and actor.permissions == C


def _link_url(prefix: str) -> Callable[[str], str]:
    from urllib.parse import quote

    def url(path: str) -> str:
        inner = path.removeprefix("/proj")
        return prefix + quote(inner if inner.startswith("/") else "/" + inner)

    return url


async def test_share_ids_and_trash_items_are_private(app: EcrinApp, alice: Dav, bob: Dav) -> None:
    await app.runtime.services.accounts.create_user("mallory", PASSWORD)
    mallory = Dav(alice.client, "mallory", PASSWORD)
    await alice.mkcol("/proj")
    given = await share(alice, "/proj", 0, shareWith="bob")
    for dav, status in ((alice, 200), (bob, 200), (mallory, 404)):
        response = await dav.client.get(
            f"{OCS}/shares/{given['id']}", params={"format": "json"}, auth=dav.auth
        )
        assert response.status_code == status, (dav.user, response.text)
    for dav, status in ((bob, 403), (mallory, 404)):
        for method in ("PUT", "DELETE"):
            response = await dav.client.request(
                method, f"{OCS}/shares/{given['id']}", params={"format": "json"}, auth=dav.auth
            )
            assert response.status_code == status, (dav.user, method, response.text)
    await alice.put("/gone.txt", b"x", status=201)
    await alice.delete("/gone.txt")
    items = await app.runtime.services.trash.items(
        await app.runtime.services.accounts.get_user("alice")
    )
    item = f"gone.txt.d{items[0].id}"
    for dav in (bob, mallory):
        for method in ("GET", "DELETE", "PROPFIND"):
            response = await dav.client.request(
                method, f"/remote.php/dav/trashbin/alice/trash/{item}", auth=dav.auth
            )
            assert response.status_code == 404, (dav.user, method)
            response = await dav.client.request(
                method, f"/remote.php/dav/trashbin/{dav.user}/trash/{item}", auth=dav.auth
            )
            assert response.status_code == 404, (dav.user, method)
