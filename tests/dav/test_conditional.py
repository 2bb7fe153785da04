"""Conditional PUT (RFC 9110 13.1): If-Match and If-None-Match, checked inside the commit.

A failed precondition is 412 and changes nothing: not the contents, not the file's or its
folder's etag, not the usage, and no blob is left behind.
"""

from __future__ import annotations

from pathlib import Path

from ecrin.settings import Settings
from tests.support import Dav, hrefs


def blob_files(settings: Settings) -> set[Path]:
    return {p for p in (settings.data_dir / "blobs").rglob("*") if p.is_file()}


async def _state(alice: Dav, settings: Settings) -> tuple[object, ...]:
    listing = await alice.propfind("/docs", ["d:getetag", "d:getcontentlength"])
    return (
        listing.content,
        await alice.prop("/", "d:getetag"),
        await alice.prop("/", "d:quota-used-bytes"),
        frozenset(blob_files(settings)),
    )


async def _setup(alice: Dav) -> str:
    await alice.mkcol("/docs")
    created = await alice.put("/docs/f.txt", b"version 1", status=201)
    return created.headers["etag"]


async def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(
    alice: Dav, settings: Settings
) -> None:
    etag = await _setup(alice)
    await alice.put("/docs/f.txt", b"version 2", status=204)
    before = await _state(alice, settings)
    for stale in (etag, '"nope"', f'{etag}, "other"'):
        await alice.put("/docs/f.txt", b"lost update", status=412, if_match=stale)
    assert await _state(alice, settings) == before
    assert (await alice.get("/docs/f.txt")).content == b"version 2"


async def test_if_match_with_the_current_etag_succeeds(alice: Dav) -> None:
    etag = await _setup(alice)
    updated = await alice.put("/docs/f.txt", b"version 2", status=204, if_match=etag)
    assert updated.headers["etag"] != etag
    await alice.put(
        "/docs/f.txt", b"version 3", status=204, if_match=f'"x", {updated.headers["etag"]}'
    )
    await alice.put("/docs/f.txt", b"version 4", status=204, if_match="*")
    assert (await alice.get("/docs/f.txt")).content == b"version 4"


async def test_if_match_on_a_missing_file_is_412_and_creates_nothing(
    alice: Dav, settings: Settings
) -> None:
    await _setup(alice)
    before = await _state(alice, settings)
    for condition in ("*", '"abc"'):
        await alice.put("/docs/new.txt", b"data", status=412, if_match=condition)
    await alice.get("/docs/new.txt", status=404)
    assert await _state(alice, settings) == before


async def test_if_none_match_star_only_creates(alice: Dav, settings: Settings) -> None:
    await _setup(alice)
    before = await _state(alice, settings)
    await alice.put("/docs/f.txt", b"clobbered", status=412, if_none_match="*")
    assert await _state(alice, settings) == before
    assert (await alice.get("/docs/f.txt")).content == b"version 1"
    await alice.put("/docs/g.txt", b"fresh", status=201, if_none_match="*")
    assert (await alice.get("/docs/g.txt")).content == b"fresh"
    assert hrefs(await alice.propfind("/docs")) == [
        "/remote.php/dav/files/alice/docs/",
        "/remote.php/dav/files/alice/docs/f.txt",
        "/remote.php/dav/files/alice/docs/g.txt",
    ]


async def test_if_none_match_with_an_etag(alice: Dav, settings: Settings) -> None:
    etag = await _setup(alice)
    before = await _state(alice, settings)
    await alice.put("/docs/f.txt", b"no", status=412, if_none_match=etag)
    await alice.put("/docs/f.txt", b"no", status=412, if_none_match=f'"zzz", {etag}')
    assert await _state(alice, settings) == before
    await alice.put("/docs/f.txt", b"yes", status=204, if_none_match='"some-other-version"')
    assert (await alice.get("/docs/f.txt")).content == b"yes"


async def test_both_headers_must_hold(alice: Dav, settings: Settings) -> None:
    etag = await _setup(alice)
    before = await _state(alice, settings)
    await alice.put("/docs/f.txt", b"no", status=412, if_match=etag, if_none_match=etag)
    assert await _state(alice, settings) == before
    await alice.put("/docs/f.txt", b"ok", status=204, if_match=etag, if_none_match='"other"')


async def test_the_etag_is_checked_at_commit_time(alice: Dav) -> None:
    """Two clients read the same version; the second writer loses with 412, not silently."""
    etag = await _setup(alice)
    await alice.put("/docs/f.txt", b"first writer", status=204, if_match=etag)
    await alice.put("/docs/f.txt", b"second writer", status=412, if_match=etag)
    assert (await alice.get("/docs/f.txt")).content == b"first writer"


async def test_if_match_uses_strong_comparison(alice: Dav) -> None:
    created = await alice.put("/strong.txt", b"one", status=201)
    etag = created.headers["etag"]
    await alice.put("/strong.txt", b"two", status=412, if_match=f"W/{etag}")
    await alice.put("/strong.txt", b"two", status=204, if_match=etag)
