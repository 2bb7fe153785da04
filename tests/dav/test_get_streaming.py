"""GET bodies: a small file answered in one piece, a large one streamed, ranges on both
sides of the sizes where the local store changes how it reads."""

from __future__ import annotations

import os

from ecrin.storage import local
from tests.support import Dav


async def test_a_small_file_is_answered_whole_with_its_length(alice: Dav) -> None:
    data = os.urandom(4096)
    await alice.put("/small.bin", data, status=201)
    response = await alice.get("/small.bin")
    assert response.content == data
    assert response.headers["content-length"] == "4096"
    head = await alice.request("HEAD", "/small.bin", status=200)
    assert head.content == b""
    assert head.headers["content-length"] == "4096"


async def test_an_empty_file(alice: Dav) -> None:
    await alice.put("/empty", b"", status=201)
    response = await alice.get("/empty")
    assert response.content == b""
    assert response.headers["content-length"] == "0"


async def test_a_large_file_streams_whole_and_in_ranges(alice: Dav) -> None:
    whole, chunk, window = local.WHOLE_READ, local.READ_CHUNK, local.MAP_WINDOW
    data = os.urandom(window + 2 * chunk + 7)  # sent from two mapped windows where mapped
    await alice.put("/large.bin", data, status=201)
    response = await alice.get("/large.bin")
    assert response.headers["content-length"] == str(len(data))
    assert response.content == data
    for first, last in [
        (0, whole - 1),  # exactly the largest read done in one piece
        (0, whole),  # one byte more: streamed
        (whole - 3, whole + 5),
        (chunk - 1, len(data) - 1),
        (window - 3, window + 5),  # across two windows
        (whole + 1, window - 1),  # one window, answered in one piece
        (len(data) - 1, len(data) - 1),
    ]:
        part = await alice.get("/large.bin", status=206, range=f"bytes={first}-{last}")
        assert part.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
        assert part.content == data[first : last + 1], (first, last)
