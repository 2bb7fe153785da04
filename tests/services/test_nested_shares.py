"""A folder and a folder inside it, both shared with one recipient: the recipient's paths no
longer show which lies inside which. A MOVE must not make the tree a cycle (every walk up the
tree would then run forever); a COPY copies the source as it was before the copy."""

from __future__ import annotations

import time

import pytest

from ecrin.app import EcrinApp
from ecrin.core.clock import ManualClock
from ecrin.core.model import ShareType
from ecrin.core.paths import DavPath
from ecrin.services.sharing import ShareRequest
from tests.support import Dav


@pytest.fixture
async def nested(app: EcrinApp, alice: Dav, bob: Dav) -> Dav:
    """Bob shares /P and /P/F/sub with Alice: she sees /P (holding F/sub) and /sub."""
    await bob.mkcol("/P")
    await bob.mkcol("/P/F")
    await bob.mkcol("/P/F/sub")
    await bob.put("/P/F/sub/file.txt", b"contents", status=201)
    owner = await app.runtime.services.accounts.get_user("bob")
    for path in ("/P", "/P/F/sub"):
        request = ShareRequest(ShareType.USER, share_with="alice")
        await app.runtime.services.sharing.create(owner, DavPath.parse(path), request)
    return alice


async def test_a_folder_cannot_be_moved_into_itself_through_a_share(nested: Dav, bob: Dav) -> None:
    await nested.move("/P/F", "/sub/inside", status=409)
    await bob.propfind("/P/F/sub", depth="1")
    assert (await nested.get("/P/F/sub/file.txt")).content == b"contents"


async def test_a_copy_into_its_own_source_copies_it_as_it_was(
    app: EcrinApp, nested: Dav, bob: Dav, clock: ManualClock
) -> None:
    await nested.copy("/P/F", "/sub/again", status=201)
    assert (await bob.get("/P/F/sub/again/sub/file.txt")).content == b"contents"
    await bob.get("/P/F/sub/again/sub/again", status=404)
    clock.advance(max(0.0, time.time() + 1 - clock.now()))
    assert (await app.runtime.services.consistency.check(grace_seconds=0)).clean
