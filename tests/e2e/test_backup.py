"""`ecrin backup` beside a running server that takes uploads, then a server on the backup.

Clients upload files large enough for the blob store while the backup runs. A second
server started on the backup folder serves every file acknowledged before the backup began,
byte for byte; a file uploaded during the backup is there whole or not at all; `ecrin check`
finds the backup clean; a second backup copies only what is new.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import LiveServer, StartServer, free_port
from tests.profile import scaleout_profile
from tests.support import run_ecrin

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(scaleout_profile(), reason="backs up SQLite metadata and a local store"),
]

WRITERS = 4
BEFORE = 20  # files each writer uploads before the backup starts


def contents(name: str) -> bytes:
    """~100 KiB that say which file they are (past what the database keeps itself)."""
    return hashlib.sha256(name.encode()).digest() * 3200


@dataclass
class Writer:
    server: LiveServer
    tag: str
    stop: threading.Event = field(default_factory=threading.Event)
    acknowledged: list[str] = field(default_factory=list)

    def upload(self, count: int | None = None) -> None:
        """`count` files, or files until `stop` is set."""
        connection = self.server.connection()
        try:
            while not self.stop.is_set() and (count is None or count > 0):
                name = f"/{self.tag}-{len(self.acknowledged):05d}.bin"
                headers = {"Authorization": self.server.auth_header()}
                connection.request("PUT", self.server.dav_path(name), contents(name), headers)
                response = connection.getresponse()
                response.read()
                assert response.status == 201, response.status
                self.acknowledged.append(name)
                count = None if count is None else count - 1
        finally:
            connection.close()


def get(server: LiveServer, name: str) -> tuple[int, bytes]:
    connection = server.connection()
    try:
        connection.request(
            "GET", server.dav_path(name), headers={"Authorization": server.auth_header()}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_backup_taken_under_uploads_runs_as_a_server(
    live_server: StartServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = live_server()
    writers = [Writer(server, f"w{i}") for i in range(WRITERS)]
    for writer in writers:
        writer.upload(BEFORE)
    before = [name for writer in writers for name in writer.acknowledged]
    threads = [threading.Thread(target=writer.upload) for writer in writers]
    for thread in threads:
        thread.start()
    destination = tmp_path_factory.mktemp("backup") / "copy"
    try:
        output = server.ecrin("backup", str(destination)).stdout
    finally:
        for writer in writers:
            writer.stop.set()
        for thread in threads:
            thread.join(60)
    during = [name for writer in writers for name in writer.acknowledged if name not in before]
    assert "backup complete" in output, output

    restored = LiveServer(
        data_dir=destination,
        port=free_port(),
        env=server.env,
        log_dir=tmp_path_factory.mktemp("restored"),
        user=server.user,
        password=server.password,
    )
    restored.start()
    try:
        for name in before:
            assert get(restored, name) == (200, contents(name)), name
        present = 0
        for name in during:
            status, body = get(restored, name)
            assert status == 404 or (status, body) == (200, contents(name)), name
            present += status == 200
    finally:
        restored.stop()
    assert "clean" in run_ecrin(destination, server.env, "check").stdout

    again = server.ecrin("backup", str(destination)).stdout
    copied = int(re.search(r"blobs: (\d+) copied", again).group(1))  # type: ignore[union-attr]
    assert copied == len(during) - present, again
