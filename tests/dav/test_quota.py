"""Quotas: refused with 507 (before the body is read when its size is announced), reported
in the RFC 4331 properties, and given back when files go away."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from lxml import etree

from ecrin.app import EcrinApp
from tests.support import NS, Dav

QUOTA = 1000


@pytest.fixture
async def limited(app: EcrinApp, alice: Dav) -> Dav:
    await app.runtime.services.accounts.set_quota("alice", QUOTA)
    return alice


async def _quota(dav: Dav, path: str = "/") -> tuple[int, int]:
    """(quota-used-bytes, quota-available-bytes) of a folder."""
    used = await dav.prop(path, "d:quota-used-bytes")
    available = await dav.prop(path, "d:quota-available-bytes")
    assert used is not None and available is not None
    return int(used), int(available)


def _assert_507(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    assert etree.fromstring(response.content).find("d:quota-not-exceeded", NS) is not None


class WatchedBody:
    """A request body that records whether the server started reading it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield b"x" * self.size


async def test_announced_size_over_quota_is_507_before_the_body_is_read(limited: Dav) -> None:
    body = WatchedBody(QUOTA + 1)
    response = await limited.client.put(
        limited.url("/too-big.bin"),
        content=body,
        headers={"Content-Length": str(QUOTA + 1)},
        auth=limited.credentials,
    )
    _assert_507(response)
    assert not body.read, "the server read a body it was bound to refuse"
    await limited.get("/too-big.bin", status=404)
    assert await _quota(limited) == (0, QUOTA)


async def test_unannounced_size_over_quota_is_507_and_stores_nothing(limited: Dav) -> None:
    body = WatchedBody(QUOTA + 1)
    response = await limited.client.put(
        limited.url("/chunked.bin"), content=body, auth=limited.credentials
    )
    assert "content-length" not in response.request.headers
    _assert_507(response)
    assert body.read
    await limited.get("/chunked.bin", status=404)
    assert await _quota(limited) == (0, QUOTA)


async def test_overwrites_count_only_the_difference(limited: Dav) -> None:
    await limited.put("/f.bin", b"a" * 900, status=201)
    assert await _quota(limited) == (900, 100)
    await limited.put("/f.bin", b"b" * 1000, status=204)  # +100: exactly full
    assert await _quota(limited) == (1000, 0)
    _assert_507(await limited.put("/f.bin", b"c" * 1001))
    assert (await limited.get("/f.bin")).content == b"b" * 1000
    await limited.put("/f.bin", b"d" * 10, status=204)  # shrinking is always allowed
    assert await _quota(limited) == (10, 990)


async def test_copy_over_quota_is_507_and_creates_nothing(limited: Dav) -> None:
    await limited.mkcol("/dir")
    await limited.put("/dir/one.bin", b"1" * 300, status=201)
    await limited.put("/dir/two.bin", b"2" * 300, status=201)
    assert await _quota(limited) == (600, 400)
    _assert_507(await limited.copy("/dir", "/dir-copy"))
    await limited.propfind("/dir-copy", status=404)
    await limited.copy("/dir/one.bin", "/one-copy.bin", status=201)  # 300 more: fits
    assert await _quota(limited) == (900, 100)
    _assert_507(await limited.copy("/dir/two.bin", "/two-copy.bin"))
    # Replacing a file of the same size needs no more room.
    await limited.copy("/dir/two.bin", "/one-copy.bin", status=204)
    assert (await limited.get("/one-copy.bin")).content == b"2" * 300
    await limited.get("/two-copy.bin", status=404)
    assert await _quota(limited) == (900, 100)


async def test_quota_properties_follow_uploads_and_deletes(limited: Dav) -> None:
    assert await _quota(limited) == (0, QUOTA)
    await limited.mkcol("/docs")
    await limited.put("/docs/a.txt", b"a" * 250, status=201)
    await limited.put("/b.txt", b"b" * 100, status=201)
    assert await _quota(limited) == (350, 650)
    assert (await _quota(limited, "/docs"))[0] == 250
    await limited.delete("/docs")
    assert await _quota(limited) == (100, 900)
    await limited.delete("/b.txt")
    assert await _quota(limited) == (0, QUOTA)
    # The space is really back: the full quota can be used again.
    await limited.put("/full.bin", b"f" * QUOTA, status=201)
    assert await _quota(limited) == (QUOTA, 0)


async def test_unlimited_users_report_no_limit(alice: Dav) -> None:
    await alice.put("/f.bin", b"x" * 5000, status=201)
    used, available = await _quota(alice)
    assert used == 5000
    assert available < 0  # Nextcloud's "unlimited" (-3); clients show no limit
