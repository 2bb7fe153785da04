"""SIGKILL the server while clients upload small files at once: what was acknowledged stays.

Small files keep their bytes in the metadata database and share their commits (group
commit), so one crash interrupts many uploads at different steps of the same batch. After
each crash and restart: every acknowledged file reads back exactly; a file whose upload got
no answer is absent or whole; a file overwritten again and again holds one of its versions,
never older than the last acknowledged one; `ecrin check --verify-checksums` finds nothing
to repair (these uploads never touch the blob store). The kill delay is the fault being
injected, not a way to wait for something.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import LiveServer, StartServer
from tests.e2e.test_crash import ecrin_check
from tests.profile import scaleout_profile

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        scaleout_profile(),
        reason="kills one server process with SIGKILL and restarts it; the scale-out "
        "profile's server is a group of workers behind nginx",
    ),
]

WRITERS = 8
ROUNDS = 3
WAIT = 60.0


def contents(name: str, version: int) -> bytes:
    """Some KiB that say which file and version they are, every byte of them."""
    seed = hashlib.sha256(f"{name}#{version}".encode()).digest()
    return (seed * 256)[: 1000 + (seed[0] * 13)]


@dataclass
class Writer:
    """One client: new files under its own name, and one file it overwrites in between."""

    server: LiveServer
    tag: str
    stop: threading.Event
    acknowledged: list[str] = field(default_factory=list)
    attempted: list[str] = field(default_factory=list)
    versions_acknowledged: int = 0
    versions_attempted: int = 0
    refusals: list[str] = field(default_factory=list)  # answers other than 201/204

    def run(self) -> None:
        connection = self.server.connection(timeout=WAIT)
        try:
            while not self.stop.is_set():
                name = f"/{self.tag}-{len(self.attempted):05d}.txt"
                self.attempted.append(name)
                if self._put(connection, name, contents(name, 0)):
                    self.acknowledged.append(name)
                self.versions_attempted += 1
                if self._put(connection, self.overwritten, self.version(self.versions_attempted)):
                    self.versions_acknowledged = self.versions_attempted
        except (OSError, http.client.HTTPException):
            pass  # the server died under us: that is the point
        finally:
            connection.close()

    @property
    def overwritten(self) -> str:
        return f"/{self.tag}-overwritten.txt"

    def version(self, number: int) -> bytes:
        return contents(self.overwritten, number)

    def _put(self, connection: http.client.HTTPConnection, path: str, data: bytes) -> bool:
        headers = {"Authorization": self.server.auth_header(), "Content-Length": str(len(data))}
        connection.request("PUT", self.server.dav_path(path), body=data, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status not in (201, 204):
            self.refusals.append(f"{path}: {response.status}")
            self.stop.set()
        return response.status in (201, 204)


def get(server: LiveServer, path: str) -> bytes | None:
    connection = server.connection(timeout=WAIT)
    try:
        connection.request(
            "GET", server.dav_path(path), headers={"Authorization": server.auth_header()}
        )
        response = connection.getresponse()
        body = response.read()
        if response.status == 404:
            return None
        assert response.status == 200, (path, response.status)
        return body
    finally:
        connection.close()


def test_sigkill_during_many_small_uploads_keeps_every_acknowledged_one(
    live_server: StartServer,
) -> None:
    server = live_server()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    acknowledged = in_flight = 0
    for round_number in range(ROUNDS):
        stop = threading.Event()
        writers = [Writer(server, f"r{round_number}w{i}", stop) for i in range(WRITERS)]
        threads = [threading.Thread(target=w.run, name=w.tag) for w in writers]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.5, 1.5))  # the injected fault's position
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(WAIT)
            assert not thread.is_alive(), "a writer hung"
        server.start()

        where = f"round {round_number} (random seed {seed})"
        for writer in writers:
            assert not writer.refusals, f"{writer.refusals}: {where}"
            for name in writer.acknowledged:
                assert get(server, name) == contents(name, 0), f"{name} lost: {where}"
            for name in writer.attempted[len(writer.acknowledged) :]:
                assert get(server, name) in (None, contents(name, 0)), f"{name} torn: {where}"
                in_flight += 1
            current = get(server, writer.overwritten)
            possible = [
                writer.version(n)
                for n in range(writer.versions_acknowledged, writer.versions_attempted + 1)
            ]
            assert current in possible or (current is None and not writer.versions_acknowledged), (
                f"{writer.overwritten} lost its acknowledged version: {where}"
            )
            acknowledged += len(writer.acknowledged)
        report = ecrin_check(server, "--grace", "0", "--verify-checksums")
        assert report["clean"], f"{report} after {where}"
    print(f"{acknowledged} acknowledged uploads, {in_flight} cut short, {ROUNDS} crashes")
    assert acknowledged >= WRITERS * ROUNDS, "too few uploads were acknowledged to test much"
