"""Chunked uploads under /remote.php/dav/uploads/<user>/: NG/v1, v2, byte-range names."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from lxml import etree

from ecrin.app import EcrinApp, create_app
from ecrin.core.clock import ManualClock
from ecrin.settings import Settings
from tests.support import NS, PASSWORD, Dav

UPLOADS = "/remote.php/dav/uploads/alice"
FILES = "/remote.php/dav/files/alice"


class Uploads:
    """Verb helpers for the uploads area, each taking the status it expects."""

    def __init__(self, client: httpx.AsyncClient, auth: tuple[str, str] = ("alice", PASSWORD)):
        self.client = client
        self.auth = auth

    async def request(
        self,
        method: str,
        path: str,
        status: int | None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        response = await self.client.request(
            method, UPLOADS + path, content=body, headers=dict(headers or {}), auth=self.auth
        )
        if status is not None:
            assert response.status_code == status, (
                f"{method} {path}: {response.status_code} != {status}\n{response.text[:1000]}"
            )
        return response

    async def mkcol(self, upload: str, status: int = 201, **headers: str) -> httpx.Response:
        return await self.request("MKCOL", f"/{upload}", status, headers=_h(headers))

    async def put(
        self, upload: str, chunk: str, data: bytes, status: int | None = 201, **headers: str
    ) -> httpx.Response:
        return await self.request("PUT", f"/{upload}/{chunk}", status, data, _h(headers))

    async def move(
        self, upload: str, destination: str, status: int | None = 201, **headers: str
    ) -> httpx.Response:
        return await self.request(
            "MOVE",
            f"/{upload}/.file",
            status,
            headers={"Destination": FILES + destination, **_h(headers)},
        )

    async def listing(self, upload: str, status: int = 207) -> dict[str, int | None]:
        """name -> getcontentlength (None for the folder itself), in response order."""
        body = (
            '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
            "<d:resourcetype/><d:getcontentlength/></d:prop></d:propfind>"
        )
        response = await self.request(
            "PROPFIND", f"/{upload}", status, body.encode(), {"Depth": "1"}
        )
        assert response.headers["content-type"] == "application/xml; charset=utf-8"
        found: dict[str, int | None] = {}
        for entry in etree.fromstring(response.content).iterfind("d:response", NS):
            href = entry.findtext("d:href", "", NS)
            length = entry.findtext(".//d:getcontentlength", "", NS)  # empty in a 404 propstat
            found[href] = int(length) if length else None
        return found


def _h(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.replace("_", "-"): v for k, v in headers.items()}


def sha1(data: bytes) -> str:
    return "SHA1:" + hashlib.sha1(data).hexdigest()


@pytest.fixture
async def up(alice: Dav) -> Uploads:
    return Uploads(alice.client)


DATA = os.urandom(250_000)
PARTS = [DATA[:100_000], DATA[100_000:200_000], DATA[200_000:]]


async def _chunk_count(app: EcrinApp) -> int:
    async with app.runtime.metadata.read() as tx:
        return len(await tx.upload_chunk_blob_ids())


# --- the NG / v1 scheme of nextcloudcmd 3.7 ---------------------------------------------------


async def test_nextcloudcmd_sequence(app: EcrinApp, alice: Dav, up: Uploads) -> None:
    await up.mkcol("2719295393", OC_Total_Length=str(len(DATA)))
    offset = 0
    for index, part in enumerate(PARTS):
        response = await up.put("2719295393", f"{index:016d}", part, OC_Chunk_Offset=str(offset))
        assert response.headers["etag"]
        offset += len(part)
    response = await up.move(
        "2719295393",
        "/big.bin",
        OC_Checksum=sha1(DATA),
        OC_Total_Length=str(len(DATA)),
        X_OC_Mtime="1700000123",
        Content_Type="application/octet-stream",
    )
    assert response.headers["oc-fileid"].endswith(app.runtime.services.instance_id)
    assert response.headers["etag"] == response.headers["oc-etag"]
    assert response.headers["x-oc-mtime"] == "accepted"

    download = await alice.get("/big.bin")
    assert download.content == DATA
    assert download.headers["oc-checksum"] == sha1(DATA)
    assert download.headers["etag"] == response.headers["etag"]
    assert await alice.prop("/big.bin", "d:getlastmodified") == "Tue, 14 Nov 2023 22:15:23 GMT"
    assert await alice.prop("/big.bin", "oc:id") == response.headers["oc-fileid"]
    # The session and its chunks are gone.
    await up.listing("2719295393", status=404)
    assert await _chunk_count(app) == 0


async def test_replacing_a_file_keeps_its_id_and_honours_if_match(alice: Dav, up: Uploads) -> None:
    created = await alice.put("/doc.bin", b"old", status=201)
    await up.mkcol("1")
    await up.put("1", "0", DATA)
    await up.move("1", "/doc.bin", status=412, If_Match='"not-the-etag"')
    assert (await alice.get("/doc.bin")).content == b"old"
    response = await up.move("1", "/doc.bin", status=204, If_Match=created.headers["etag"])
    assert response.headers["oc-fileid"] == created.headers["oc-fileid"]
    assert (await alice.get("/doc.bin")).content == DATA


async def test_out_of_order_and_duplicate_chunks(alice: Dav, up: Uploads) -> None:
    await up.mkcol("77")
    await up.put("77", "0000000000000002", PARTS[2])
    await up.put("77", "0000000000000000", b"garbage that will be replaced")
    await up.put("77", "0000000000000001", PARTS[1])
    await up.put("77", "0000000000000000", PARTS[0], status=204)  # same name: replaced
    await up.move("77", "/ooo.bin", OC_Total_Length=str(len(DATA)))
    assert (await alice.get("/ooo.bin")).content == DATA


async def test_missing_chunk_is_refused_and_nothing_is_visible(
    app: EcrinApp, alice: Dav, up: Uploads
) -> None:
    await up.mkcol("5")
    await up.put("5", "0000000000000000", PARTS[0], OC_Chunk_Offset="0")
    await up.put("5", "0000000000000002", PARTS[2], OC_Chunk_Offset="200000")
    response = await up.move("5", "/gap.bin", status=400, OC_Total_Length=str(len(DATA)))
    assert "missing" in response.text
    await alice.get("/gap.bin", status=404)
    # The upload is kept: the client can still send the missing chunk and retry.
    await up.put("5", "0000000000000001", PARTS[1], OC_Chunk_Offset="100000")
    await up.move("5", "/gap.bin", OC_Total_Length=str(len(DATA)))
    assert (await alice.get("/gap.bin")).content == DATA


async def test_missing_chunk_detected_from_numbers_alone(alice: Dav, up: Uploads) -> None:
    await up.mkcol("6")
    await up.put("6", "0000000000000000", PARTS[0])
    await up.put("6", "0000000000000002", PARTS[2])
    response = await up.move("6", "/gap.bin", status=400)
    assert "chunk 1 is missing" in response.text
    await alice.get("/gap.bin", status=404)


async def test_total_length_mismatch_is_refused(alice: Dav, up: Uploads) -> None:
    await up.mkcol("8", OC_Total_Length=str(len(DATA)))
    await up.put("8", "0", PARTS[0])
    await up.put("8", "1", PARTS[1])
    response = await up.move("8", "/short.bin", status=400)  # total from the MKCOL
    assert "sum up to 200000 bytes, not 250000" in response.text
    await up.move("8", "/short.bin", status=400, OC_Total_Length="999")
    await alice.get("/short.bin", status=404)


async def test_checksum_mismatch_is_refused_and_the_upload_dropped(
    app: EcrinApp, alice: Dav, up: Uploads
) -> None:
    await up.mkcol("9")
    await up.put("9", "0", DATA)
    response = await up.move("9", "/bad.bin", status=400, OC_Checksum=sha1(b"other"))
    assert "checksum" in response.text
    await alice.get("/bad.bin", status=404)
    await up.listing("9", status=404)
    assert await _chunk_count(app) == 0


async def test_resume_listing_and_chunk_delete(up: Uploads) -> None:
    await up.mkcol("42")
    await up.put("42", "0000000000000000", PARTS[0])
    await up.put("42", "0000000000000001", PARTS[1])
    listing = await up.listing("42")
    assert list(listing.items()) == [
        (f"{UPLOADS}/42/", None),
        (f"{UPLOADS}/42/0000000000000000", 100_000),
        (f"{UPLOADS}/42/0000000000000001", 100_000),
    ]
    await up.request("DELETE", "/42/0000000000000001", 204)
    assert len(await up.listing("42")) == 2
    await up.request("DELETE", "/42/0000000000000001", 404)


async def test_abort_frees_the_chunks(app: EcrinApp, up: Uploads) -> None:
    await up.mkcol("43")
    await up.put("43", "0", PARTS[0])
    assert await _chunk_count(app) == 1
    await up.request("DELETE", "/43", 204)
    await up.request("DELETE", "/43", 404)
    assert await _chunk_count(app) == 0
    assert [b async for b in app.runtime.blobs.list_blobs()] == []


async def test_mkcol_answers_201_exactly_then_405(up: Uploads) -> None:
    await up.mkcol("44", status=201)
    await up.mkcol("44", status=405)


async def test_uploads_root_lists_sessions(up: Uploads) -> None:
    await up.mkcol("a1")
    await up.mkcol("a2")
    listing = await up.listing("")
    assert list(listing) == [f"{UPLOADS}/", f"{UPLOADS}/a1/", f"{UPLOADS}/a2/"]


# --- other clients' names -------------------------------------------------------------------


async def test_owncloud_byte_offset_names(alice: Dav, up: Uploads) -> None:
    await up.mkcol("3", OC_Total_Length=str(len(DATA)))
    await up.put("3", "0000000000100000", PARTS[1])
    await up.put("3", "0000000000000000", PARTS[0])
    await up.put("3", "0000000000200000", PARTS[2])
    await up.move(
        "3",
        "/oc.bin",
        OC_Total_File_Length=str(len(DATA)),
        OC_Total_Length=str(len(DATA)),
    )
    assert (await alice.get("/oc.bin")).content == DATA


async def test_rclone_byte_range_names(alice: Dav, up: Uploads) -> None:
    upload = "rclone-chunked-upload-" + hashlib.md5(b"/dest/r.bin").hexdigest()
    await up.request("DELETE", f"/{upload}/", 404)
    await up.mkcol(upload)
    await up.put(upload, "000000000000000-000000000099999", PARTS[0])
    await up.put(upload, "000000000100000-000000000199999", PARTS[1])
    await up.put(upload, "000000000200000-000000000249999", PARTS[2])
    await up.request(
        "MOVE",
        f"/{upload}/.file",
        201,
        headers={
            "Destination": "http://testserver" + FILES + "/r.bin",
            "X-OC-Mtime": "1700000000",
            "OC-Checksum": sha1(DATA),
        },
    )
    assert (await alice.get("/r.bin")).content == DATA


async def test_byte_range_gap_is_refused(alice: Dav, up: Uploads) -> None:
    await up.mkcol("r2")
    await up.put("r2", "000000000000000-000000000099999", PARTS[0])
    await up.put("r2", "000000000200000-000000000249999", PARTS[2])
    response = await up.move("r2", "/r2.bin", status=400)
    assert "byte 100000" in response.text


# --- chunking v2 ----------------------------------------------------------------------------


async def test_v2_with_destination_on_every_request(alice: Dav, up: Uploads) -> None:
    destination = {"Destination": "http://testserver" + FILES + "/v2%20file.bin"}
    total = {"OC-Total-Length": str(len(DATA))}
    await up.request("MKCOL", "/v2-upload", 201, headers={**destination, **total})
    await up.put("v2-upload", "00002", PARTS[1], status=201, **destination, **total)
    await up.put("v2-upload", "00001", PARTS[0], status=201, **destination, **total)
    await up.put("v2-upload", "00003", PARTS[2], status=201, **destination, **total)
    await up.move("v2-upload", "/v2%20file.bin", OC_Total_Length=str(len(DATA)))
    assert (await alice.get("/v2 file.bin")).content == DATA


async def test_v2_refuses_chunk_names_outside_1_to_10000(up: Uploads) -> None:
    destination = FILES + "/x.bin"
    await up.mkcol("v2b", Destination=destination)
    await up.put("v2b", "0", b"x", status=400, Destination=destination)
    await up.put("v2b", "10001", b"x", status=400, Destination=destination)
    await up.put("v2b", "abc", b"x", status=400, Destination=destination)
    await up.put("v2b", "10000", b"x", status=201, Destination=destination)


async def test_v2_quota_checked_up_front(app: EcrinApp, client: httpx.AsyncClient) -> None:
    await app.runtime.services.accounts.create_user("alice", PASSWORD, quota_bytes=100_000)
    up = Uploads(client)
    destination = FILES + "/huge.bin"
    await up.mkcol("q1", status=507, Destination=destination, OC_Total_Length="100001")
    await up.mkcol("q1", status=201, Destination=destination, OC_Total_Length="100000")
    await up.put("q1", "1", b"x", status=507, Destination=destination, OC_Total_Length="200000")


async def test_chunks_count_against_the_quota(app: EcrinApp, client: httpx.AsyncClient) -> None:
    await app.runtime.services.accounts.create_user("alice", PASSWORD, quota_bytes=150_000)
    up = Uploads(client)
    await up.mkcol("q2", status=507, OC_Total_Length="150001")  # can never fit
    await up.mkcol("q2")
    await up.put("q2", "0", PARTS[0])
    await up.put("q2", "1", PARTS[1], status=507)
    await up.put("q2", "0", PARTS[1], status=204)  # replacing a chunk frees its bytes
    assert await _chunk_count(app) == 1


# --- preconditions, locks, isolation, hostile input ----------------------------------------


async def test_overwrite_false_and_locked_destination(alice: Dav, up: Uploads) -> None:
    await alice.put("/taken.bin", b"mine", status=201)
    await up.mkcol("p1")
    await up.put("p1", "0", DATA)
    await up.move("p1", "/taken.bin", status=412, Overwrite="F")
    lock_body = (
        '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/>'
        "</d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>"
    )
    await alice.request("LOCK", "/taken.bin", status=200, body=lock_body)
    await up.move("p1", "/taken.bin", status=423)
    assert (await alice.get("/taken.bin")).content == b"mine"


async def test_destination_must_be_in_the_callers_files(alice: Dav, bob: Dav, up: Uploads) -> None:
    await up.mkcol("d1")
    await up.put("d1", "0", b"data")
    await up.request(
        "MOVE", "/d1/.file", 403, headers={"Destination": "/remote.php/dav/files/bob/x"}
    )
    await up.request("MOVE", "/d1/.file", 400)  # no Destination
    await up.request("MOVE", "/d1/0", 405, headers={"Destination": FILES + "/x"})
    await bob.get("/x", status=404)


async def test_missing_parent_folder_is_a_409(alice: Dav, up: Uploads) -> None:
    await up.mkcol("d2")
    await up.put("d2", "0", b"data")
    await up.move("d2", "/no/such/folder/x.bin", status=409)


async def test_other_users_cannot_see_or_touch_an_upload(
    app: EcrinApp, client: httpx.AsyncClient, alice: Dav, bob: Dav, up: Uploads
) -> None:
    await up.mkcol("secret")
    as_bob = Uploads(client, ("bob", PASSWORD))
    for method in ("PROPFIND", "DELETE", "MKCOL"):
        await as_bob.request(method, "/secret", 404)
    await as_bob.put("secret", "0", b"x", status=404)
    await Uploads(client, ("alice", "wrong")).request("PROPFIND", "/secret", 401)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/nosuch/0", 404),  # chunk into an upload that does not exist
        ("PUT", "/h1", 405),  # no chunk name
        ("PUT", "/h1/.file", 400),
        ("PUT", "/h1/bad%20name", 400),
        ("PUT", "/h1/" + "9" * 65, 400),
        ("MKCOL", "/" + "a" * 201, 400),
        ("MKCOL", "/h1/sub", 405),
        ("MKCOL", "", 405),
        ("DELETE", "", 403),
        ("PUT", "/h1/0/deeper", 404),
        ("GET", "/h1", 405),
        ("PROPFIND", "/h1/nochunk", 404),
    ],
)
async def test_hostile_and_malformed_requests(
    up: Uploads, method: str, path: str, status: int
) -> None:
    await up.mkcol("h1")
    response = await up.request(method, path, status, b"x" if method == "PUT" else b"")
    assert "Traceback" not in response.text


async def test_bad_numbers_in_headers(up: Uploads) -> None:
    await up.mkcol("n1", status=400, OC_Total_Length="-5")
    await up.mkcol("n1", status=400, OC_Total_Length="1e9")
    await up.mkcol("n1")
    await up.put("n1", "0", b"abc", status=400, OC_Chunk_Offset="x")


async def test_propfind_depth_infinity_refused(up: Uploads) -> None:
    await up.mkcol("i1")
    await up.request("PROPFIND", "/i1", 403, headers={"Depth": "infinity"})


async def test_chunk_size_limit(tmp_path: Path, clock: ManualClock) -> None:
    settings = Settings(data_dir=tmp_path / "l", fsync=False, max_upload_bytes=1000)
    app = create_app(settings, clock)
    await app.runtime.open()
    try:
        await app.runtime.services.accounts.create_user("alice", PASSWORD)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            up = Uploads(client)
            await up.mkcol("s1")
            await up.put("s1", "0", b"x" * 1001, status=413)
            await up.put("s1", "0", b"x" * 1000, status=201)
    finally:
        await app.runtime.close()


# --- crash safety and expiry ----------------------------------------------------------------


async def test_resume_after_a_restart(settings: Settings, clock: ManualClock) -> None:
    """Chunks are durable: a new app on the same data folder continues the upload."""
    first = create_app(settings, clock)
    await first.runtime.open()
    try:
        await first.runtime.services.accounts.create_user("alice", PASSWORD)
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            up = Uploads(client)
            await up.mkcol("r1", OC_Total_Length=str(len(DATA)))
            await up.put("r1", "0000000000000000", PARTS[0], OC_Chunk_Offset="0")
            await up.put("r1", "0000000000000001", PARTS[1], OC_Chunk_Offset="100000")
    finally:
        await first.runtime.close()

    second = create_app(settings, clock)
    await second.runtime.open()
    try:
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            up = Uploads(client)
            listing = await up.listing("r1")
            assert list(listing.values()) == [None, 100_000, 100_000]
            await up.put("r1", "0000000000000002", PARTS[2], OC_Chunk_Offset="200000")
            await up.move("r1", "/resumed.bin", OC_Checksum=sha1(DATA))
            assert (await Dav(client, "alice", PASSWORD).get("/resumed.bin")).content == DATA
        report = await second.runtime.services.consistency.check(grace_seconds=0)
        assert report.clean, report
    finally:
        await second.runtime.close()


async def test_idle_uploads_expire(
    app: EcrinApp, up: Uploads, clock: ManualClock, settings: Settings
) -> None:
    await up.mkcol("old")
    await up.put("old", "0", PARTS[0])
    clock.advance(settings.upload_expiry_seconds - 10)
    await up.mkcol("young")
    await up.put("old", "1", PARTS[1])  # activity keeps "old" alive
    clock.advance(20)
    assert await app.runtime.services.uploads.expire() == []
    clock.advance(settings.upload_expiry_seconds)
    removed = await app.runtime.services.uploads.expire()
    assert sorted(name.split("/")[1] for name in removed) == ["old", "young"]
    await up.listing("old", status=404)
    assert await _chunk_count(app) == 0
    assert [b async for b in app.runtime.blobs.list_blobs()] == []


async def test_check_keeps_live_chunks_and_repair_removes_expired_ones(
    app: EcrinApp, up: Uploads, clock: ManualClock, settings: Settings
) -> None:
    await up.mkcol("c1")
    await up.put("c1", "0", PARTS[0])
    consistency = app.runtime.services.consistency
    report = await consistency.check(grace_seconds=0)
    assert report.clean, report  # a live chunk is not an orphan blob
    clock.advance(settings.upload_expiry_seconds + 1)
    report = await consistency.check(grace_seconds=0)
    assert len(report.expired_uploads) == 1 and not report.orphan_blobs
    report = await consistency.check(grace_seconds=0, repair=True)
    assert len(report.expired_uploads) == 1
    assert (await consistency.check(grace_seconds=0)).clean
    await up.listing("c1", status=404)


async def test_expiry_runs_at_startup(tmp_path: Path, clock: ManualClock) -> None:
    """The lifespan's housekeeping removes uploads that expired while the server was down."""
    settings = Settings(data_dir=tmp_path / "e", fsync=False, upload_expiry_seconds=60)
    app = create_app(settings, clock)
    await app.runtime.open()
    user = await app.runtime.services.accounts.create_user("alice", PASSWORD)
    await app.runtime.services.uploads.begin(user, "stale")
    await app.runtime.close()
    clock.advance(61)

    app = create_app(settings, clock)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return messages.pop(0)

    async def send(message: Mapping[str, object]) -> None:
        sent.append(str(message["type"]))
        if message["type"] == "lifespan.startup.complete":
            assert await app.runtime.services.uploads.sessions(user) == []

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
