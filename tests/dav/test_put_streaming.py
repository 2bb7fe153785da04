"""PUT bodies as the ASGI server delivers them: many pieces, or a client that goes away."""

from __future__ import annotations

import base64
import hashlib
import logging
import os

import pytest
from starlette.types import Message

from ecrin.app import EcrinApp
from ecrin.storage import local
from tests.profile import scaleout_profile
from tests.support import PASSWORD, Dav


async def _put(app: EcrinApp, path: str, pieces: list[bytes], *, disconnect: bool) -> int:
    """Send a PUT through the app, its body in `pieces`, then the end or a disconnect."""
    token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    messages: list[Message] = [
        {"type": "http.request", "body": piece, "more_body": True} for piece in pieces
    ]
    messages.append(
        {"type": "http.disconnect"}
        if disconnect
        else {"type": "http.request", "body": b"", "more_body": False}
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/remote.php/dav/files/alice{path}",
        "raw_path": f"/remote.php/dav/files/alice{path}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Basic {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


async def test_a_body_in_many_pieces_is_stored_whole(app: EcrinApp, alice: Dav) -> None:
    pieces = [os.urandom(64 * 1024 + n) for n in range(3 * local.WRITE_BATCH // (64 * 1024))]
    assert await _put(app, "/pieces.bin", pieces, disconnect=False) == 201
    response = await alice.get("/pieces.bin")
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(b"".join(pieces)).digest()


async def test_a_client_gone_mid_body_leaves_nothing_and_no_traceback(
    app: EcrinApp, alice: Dav, caplog: pytest.LogCaptureFixture
) -> None:
    pieces = [os.urandom(1024 * 1024) for _ in range(3)]
    with caplog.at_level(logging.ERROR):
        assert await _put(app, "/cut.bin", pieces, disconnect=True) == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await alice.get("/cut.bin", status=404)
    if not scaleout_profile():  # on S3, an aborted multipart upload leaves no object
        temporary = app.runtime.settings.data_dir / "blobs" / "tmp"
        assert list(temporary.iterdir()) == []
    assert await _put(app, "/after.bin", pieces, disconnect=False) == 201
