"""Encryption at rest through a real server and real sockets: nothing readable on disk,
and damaged contents give an error status or a cut transfer, never wrong bytes."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveServer, StartServer
from tests.profile import scaleout_profile

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        scaleout_profile(),
        reason="damages blob files in the local data folder; in the scale-out profile the "
        "contents are in S3 (the blob-store conformance suite covers encryption over S3)",
    ),
]

MARKER = b"ECRIN-E2E-MARKER-c41d-never-on-disk"
SEGMENT = 64 * 1024


def request(
    server: LiveServer, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes, bool]:
    """(status, body bytes received, whether the body was complete)."""
    connection = server.connection()
    try:
        connection.request(
            method,
            server.dav_path(path),
            body=body,
            headers={"Authorization": server.auth_header(), **headers},
        )
        response = connection.getresponse()
        try:
            return response.status, response.read(), True
        except http.client.IncompleteRead as cut:
            return response.status, cut.partial, False
    finally:
        connection.close()


def body_of(server: LiveServer) -> list[Path]:
    blobs = server.data_dir / "blobs"
    return [p for p in blobs.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*") if p.is_file()]


def test_encrypted_server_end_to_end(live_server: StartServer) -> None:
    server = live_server(ECRIN_ENCRYPTION="true")
    data = bytearray(os.urandom(40 * SEGMENT + 123))
    for offset in (0, SEGMENT - 7, 9 * SEGMENT):
        data[offset : offset + len(MARKER)] = MARKER
    original = bytes(data)
    assert request(server, "PUT", "/f.bin", original)[0] == 201
    assert request(server, "GET", "/f.bin") == (200, original, True)
    status, ranged, _ = request(
        server, "GET", "/f.bin", Range=f"bytes={SEGMENT - 10}-{SEGMENT + 9}"
    )
    assert status == 206 and ranged == original[SEGMENT - 10 : SEGMENT + 10]
    on_disk = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert not [p for p in on_disk if MARKER[:16] in p.read_bytes()]

    # A damaged later segment: the status line went out, the transfer is cut short.
    [body] = body_of(server)
    raw = bytearray(body.read_bytes())
    raw[8 + 30 * (SEGMENT + 16) + 5] ^= 1  # past the first piece (1 MiB)
    body.write_bytes(bytes(raw))
    status, received, complete = request(server, "GET", "/f.bin")
    assert status == 200 and not complete
    assert len(received) < len(original) and original.startswith(received)

    # A damaged first segment: an error status, no content.
    assert request(server, "PUT", "/g.bin", original)[0] == 201
    [second] = [p for p in body_of(server) if p != body]
    raw = bytearray(second.read_bytes())
    raw[20] ^= 1
    second.write_bytes(bytes(raw))
    status, received, _ = request(server, "GET", "/g.bin")
    assert status == 500 and MARKER not in received
    server.stop()
    assert "unreadable" in server.log_tail(lines=200)
