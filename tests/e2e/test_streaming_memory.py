"""A 2 GiB upload and download stream through the server in bounded memory.

The body is generated on the fly and hashed as it goes, on both sides of the socket, so
neither the test nor the server ever holds the file. A sampler thread reads the server
process's resident set size (psutil) during both transfers.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil
import pytest

from tests.e2e.conftest import LiveServer, StartServer
from tests.profile import scaleout_profile

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        scaleout_profile(),
        reason="samples the memory of one server process; the scale-out profile spreads "
        "requests over a group of workers",
    ),
]

CHUNK = 1024 * 1024
SIZE = 2 * 1024**3
MAX_GROWTH = 100 * 1000 * 1000
PATH = "/two-gib.bin"
TIMEOUT = 600.0


class RssSampler:
    """Samples a process's RSS until stopped; remembers the highest value."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler")
        self.peak = self._process.memory_info().rss
        self.samples = 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def generated_body(observe: Callable[[bytes], object]) -> Iterator[bytes]:
    """SIZE bytes, each 1 MiB chunk distinct, each shown to `observe` as it is produced."""
    block = random.Random(SIZE).randbytes(CHUNK)
    for index in range(SIZE // CHUNK):
        chunk = struct.pack(">Q", index) + block[8:]
        observe(chunk)
        yield chunk


@contextmanager
def request(
    server: LiveServer, method: str, body: bytes | Iterator[bytes] = b"", **headers: str
) -> Iterator[http.client.HTTPResponse]:
    connection = server.connection(timeout=TIMEOUT)
    try:
        connection.request(
            method,
            server.dav_path(PATH),
            body=body,
            headers={"Authorization": server.auth_header(), **headers},
        )
        yield connection.getresponse()
    finally:
        connection.close()


def test_two_gib_round_trip_in_bounded_server_memory(live_server: StartServer) -> None:
    server = live_server()
    # Warm up (imports, connection pools, caches) before the baseline is taken.
    for _ in range(3):
        with request(server, "PUT", b"warm-up" * 1000) as response:
            assert response.status in (201, 204)
        with request(server, "GET") as response:
            assert response.read() == b"warm-up" * 1000
    baseline = psutil.Process(server.pid).memory_info().rss

    uploaded = hashlib.sha256()
    body = generated_body(uploaded.update)
    with (
        RssSampler(server.pid) as upload_memory,
        request(server, "PUT", body, **{"Content-Length": str(SIZE)}) as response,
    ):
        response.read()
    assert response.status == 204, response.status

    downloaded = hashlib.sha256()
    received = 0
    with RssSampler(server.pid) as download_memory, request(server, "GET") as response:
        assert response.status == 200
        assert response.getheader("content-length") == str(SIZE)
        while chunk := response.read(CHUNK):
            downloaded.update(chunk)
            received += len(chunk)

    assert received == SIZE
    assert downloaded.hexdigest() == uploaded.hexdigest()
    assert upload_memory.samples > 0 and download_memory.samples > 0
    for name, sampler in (("upload", upload_memory), ("download", download_memory)):
        growth = sampler.peak - baseline
        print(f"{name}: server RSS peak {sampler.peak / 1e6:.1f} MB, growth {growth / 1e6:.1f} MB")
        assert growth < MAX_GROWTH, f"{name} grew the server's RSS by {growth / 1e6:.1f} MB"
    with request(server, "DELETE") as response:
        assert response.status == 204
