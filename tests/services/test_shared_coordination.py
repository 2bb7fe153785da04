"""Two app instances on one database and one Redis, as two worker processes would run:
what one of them does is honoured by the other at once (no cache, window or guard is
private to one process). In process, through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ecrin.app import EcrinApp, create_app
from ecrin.coordination.leases import holding
from ecrin.core.clock import ManualClock
from ecrin.services.housekeeping import housekeep_once
from ecrin.services.notifications import ChangeEvent
from ecrin.settings import Settings
from tests.backends import empty_redis_prefix, redis_test_location
from tests.sharing.helpers import link_dav, share
from tests.support import PASSWORD, Dav

UPLOADS = "/remote.php/dav/uploads/alice"


@dataclass
class Worker:
    app: EcrinApp
    alice: Dav


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[tuple[Worker, Worker]]:
    url, prefix = redis_test_location()
    settings = Settings(
        data_dir=tmp_path / "data",
        fsync=False,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        redis_url=url,
        redis_key_prefix=prefix,
    )
    clock = ManualClock()
    apps = [create_app(settings, clock), create_app(settings, clock)]
    clients = []
    try:
        for app in apps:
            await app.runtime.open()
        await apps[0].runtime.services.accounts.create_user("alice", PASSWORD)
        for app in apps:
            transport = httpx.ASGITransport(app=app)
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        yield (
            Worker(apps[0], Dav(clients[0], "alice", PASSWORD)),
            Worker(apps[1], Dav(clients[1], "alice", PASSWORD)),
        )
    finally:
        for client in clients:
            await client.aclose()
        for app in apps:
            await app.runtime.close()
        await empty_redis_prefix(url, prefix)


async def test_an_app_password_revoked_on_one_worker_is_refused_by_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    accounts = a.app.runtime.services.accounts
    record, token = await accounts.create_app_password("alice", "laptop")
    with_token = Dav(b.alice.client, "alice", token)
    await with_token.propfind("/", depth="0")  # now in b's credential cache
    await with_token.propfind("/", depth="0")
    await accounts.revoke_app_password("alice", record.id)
    await with_token.propfind("/", depth="0", status=401)


async def test_a_password_changed_on_one_worker_is_refused_by_the_other(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    await b.alice.propfind("/", depth="0")
    await a.app.runtime.services.accounts.set_password("alice", "a new password, long")
    await b.alice.propfind("/", depth="0", status=401)
    await Dav(b.alice.client, "alice", "a new password, long").propfind("/", depth="0")


async def test_wrong_link_passwords_count_on_every_worker(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    await a.alice.mkcol("/secret")
    await a.alice.put("/secret/s.txt", b"s", status=201)
    link = await share(a.alice, "/secret", 3, password="opensesame")
    for worker in (a, b, a, b, a):
        await link_dav(worker.alice.client, link["token"], "wrong").get("/s.txt", status=401)
    for worker in (a, b):
        right = link_dav(worker.alice.client, link["token"], "opensesame")
        await right.get("/s.txt", status=429)


async def test_an_upload_being_assembled_elsewhere_is_neither_assembled_nor_cancelled(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    client, auth = b.alice.client, b.alice.credentials
    assert (await client.request("MKCOL", f"{UPLOADS}/t1", auth=auth)).status_code == 201
    put = await client.put(f"{UPLOADS}/t1/00000", content=b"chunk", auth=auth)
    assert put.status_code == 201
    sessions = await b.app.runtime.services.uploads.sessions(
        await b.app.runtime.services.accounts.get_user("alice")
    )
    destination = {"Destination": b.alice.url("/assembled.txt")}
    lease = f"upload-assembly:{sessions[0].id}"
    async with holding(a.app.runtime.coordination, lease, ttl=30.0) as held:
        assert held  # as if worker a were assembling it right now
        move = await client.request("MOVE", f"{UPLOADS}/t1/.file", headers=destination, auth=auth)
        assert move.status_code == 423, move.text
        cancel = await client.request("DELETE", f"{UPLOADS}/t1", auth=auth)
        assert cancel.status_code == 423, cancel.text
    move = await client.request("MOVE", f"{UPLOADS}/t1/.file", headers=destination, auth=auth)
    assert move.status_code == 201, move.text
    assert (await a.alice.get("/assembled.txt")).content == b"chunk"


async def test_every_worker_hears_the_changes_committed_on_another(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    received: list[ChangeEvent] = []
    async with b.app.runtime.services.files.notifier.events() as events:
        await a.alice.mkcol("/docs")
        put = await a.alice.put("/docs/x.txt", b"x", status=201)
        await a.alice.move("/docs/x.txt", "/docs/y.txt", status=201)
        await a.alice.delete("/docs/y.txt")

        async def take(count: int) -> None:
            async for event in events:
                received.append(event)
                if len(received) == count:
                    return

        await asyncio.wait_for(take(5), 10)
    assert [(e.user, e.path) for e in received] == [
        ("alice", "/docs"),
        ("alice", "/docs/x.txt"),
        ("alice", "/docs/x.txt"),
        ("alice", "/docs/y.txt"),
        ("alice", "/docs/y.txt"),
    ]
    assert received[1].etag == put.headers["ETag"].strip('"')
    assert [bool(e.etag) for e in received] == [True, True, False, True, False]


async def test_one_worker_at_a_time_does_the_housekeeping(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    services = b.app.runtime.services
    user = await services.accounts.get_user("alice")
    await services.uploads.begin(user, "stale")
    assert isinstance(services.clock, ManualClock)
    services.clock.advance(b.app.runtime.settings.upload_expiry_seconds + 1)
    async with holding(a.app.runtime.coordination, "housekeeping", ttl=30.0) as held:
        assert held  # worker a is in the middle of a round
        await housekeep_once(services, b.app.runtime.coordination)
        assert len(await services.uploads.sessions(user)) == 1  # b skipped it
    await housekeep_once(services, b.app.runtime.coordination)
    assert await services.uploads.sessions(user) == []
