"""PATCH with X-Recalculate-Hash: the stored checksum is recomputed from the bytes."""

from __future__ import annotations

import hashlib

from ecrin.app import EcrinApp
from ecrin.core.paths import DavPath
from tests.support import Dav


async def test_recalculate_replaces_a_wrong_checksum(app: EcrinApp, alice: Dav) -> None:
    created = await alice.put("/r.txt", b"hello", status=201)
    user = await app.runtime.services.accounts.get_user("alice")
    node = await app.runtime.services.files.stat(user, DavPath(("r.txt",)))
    async with app.runtime.metadata.write() as tx:
        await tx.set_checksums(node.id, "SHA1:" + "0" * 40)  # as if stored wrong
    assert (await alice.get("/r.txt")).headers["oc-checksum"] == "SHA1:" + "0" * 40

    response = await alice.request(
        "PATCH", "/r.txt", status=204, headers={"X-Recalculate-Hash": "SHA1"}
    )
    right = "SHA1:" + hashlib.sha1(b"hello").hexdigest()
    assert response.headers["oc-checksum"] == right
    download = await alice.get("/r.txt")
    assert download.headers["oc-checksum"] == right
    assert download.headers["etag"] == created.headers["etag"]  # contents did not change


async def test_recalculate_other_types_and_refusals(alice: Dav) -> None:
    await alice.put("/r.txt", b"hello", status=201)
    await alice.mkcol("/folder")
    response = await alice.request(
        "PATCH", "/r.txt", status=204, headers={"X-Recalculate-Hash": "md5"}
    )
    assert response.headers["oc-checksum"] == "MD5:" + hashlib.md5(b"hello").hexdigest()
    await alice.request("PATCH", "/r.txt", status=400, headers={"X-Recalculate-Hash": "CRC99"})
    await alice.request("PATCH", "/r.txt", status=400)
    await alice.request("PATCH", "/nothere.txt", status=404, headers={"X-Recalculate-Hash": "SHA1"})
    await alice.request("PATCH", "/folder", status=405, headers={"X-Recalculate-Hash": "SHA1"})
