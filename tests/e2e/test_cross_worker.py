"""Two workers on shared PostgreSQL + S3 + Redis: whatever one acknowledges, the other shows.

Two `ecrin serve` processes (and the nginx in front of them, as deployed) share one
database, one S3 prefix and one Redis prefix. Many concurrent clients address the workers
alternately over real sockets: a write acknowledged by one worker is read back from the
other at once, and so are the etags of every folder above it. Counted, and required to be
zero: stale reads (old content, or an ancestor etag that did not move), spurious 412/423
(a precondition or lock evaluated on stale state) and lost files. A lock taken through one
worker binds the other; an app password revoked through one is refused by the other on the
very next request; a chunked upload sent to both is assembled by either, and only once when
both are asked at the same instant. Without a shared Redis, the revocation and the double
assembly tests fail (checked by running them with `redis_url` removed).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from lxml import etree

from tests.e2e.scaleout import SharedBackends, WorkerGroup, answers, free_port
from tests.support import run_ecrin

pytestmark = pytest.mark.e2e

CLIENTS = 8
ROUNDS = 12
PASSWORD = "cross worker password"
NS = {"d": "DAV:"}
ETAG_BODY = (
    b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
)
LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><d:lockinfo xmlns:d="DAV:">'
    b"<d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
    b"<d:owner>cross-worker test</d:owner></d:lockinfo>"
)


@dataclass
class Cluster:
    group: WorkerGroup
    env: dict[str, str]
    data_dir: Path

    @property
    def urls(self) -> list[str]:
        return [*self.group.worker_urls, f"http://127.0.0.1:{self.group.port}"]

    def ecrin(self, *args: str) -> str:
        return run_ecrin(self.data_dir, self.env, *args).stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    backends = SharedBackends.create()
    root = tmp_path_factory.mktemp("cross-worker")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRIN_")}
    env.update(backends.environment(), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "ecrin", "serve", "--data-dir", str(root / "data")]
    group: WorkerGroup | None = None
    try:
        with (root / "workers.log").open("wb") as output:
            group = WorkerGroup(command, env, output, free_port(), root / "nginx")
            group.start()
        running = Cluster(group, env, root / "data")
        running.ecrin("user", "add", "alice", "--password", PASSWORD)
        yield running
        log = (root / "workers.log").read_text("utf-8", "replace")
        assert "Traceback" not in log, log[-4000:]
    finally:
        if group is not None:
            group.stop()
        backends.destroy()


@dataclass
class Tally:
    operations: Counter[str] = field(default_factory=Counter)
    stale_reads: list[str] = field(default_factory=list)
    spurious: list[str] = field(default_factory=list)

    def expect(self, response: httpx.Response, *statuses: int) -> httpx.Response:
        self.operations[response.request.method] += 1
        if response.status_code not in statuses:
            what = f"{response.request.method} {response.request.url}: {response.status_code}"
            if response.status_code in (412, 423):
                self.spurious.append(what)
            raise AssertionError(f"{what}, expected {statuses}\n{response.text[:500]}")
        return response


def _dav(path: str) -> str:
    return "/remote.php/dav/files/alice" + quote(path)


def _revision(etag: str) -> int:
    """Etags are `<node id>r<revision>` in hex; the revision only grows."""
    return int(etag.strip('"').rpartition("r")[2], 16)


async def _etag(client: httpx.AsyncClient, tally: Tally, path: str) -> str:
    response = tally.expect(
        await client.request("PROPFIND", _dav(path), headers={"Depth": "0"}, content=ETAG_BODY),
        207,
    )
    etag = etree.fromstring(response.content).findtext(".//d:getetag", None, NS)
    assert etag, response.text
    return etag.strip('"')


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


async def _client_run(
    index: int, clients: list[httpx.AsyncClient], tally: Tally, expected: dict[str, bytes]
) -> None:
    """One sync client: every step goes to one worker, its check to the other."""
    folder = f"/client {index}/sub"
    one, other = clients[index % 2], clients[(index + 1) % 2]
    tally.expect(await one.request("MKCOL", _dav(f"/client {index}")), 201)
    tally.expect(await other.request("MKCOL", _dav(folder)), 201)
    for round_ in range(ROUNDS):
        writer, reader = (one, other) if round_ % 2 == 0 else (other, one)
        path = f"{folder}/file {round_ % 4}.txt"
        body = f"client {index} round {round_}\n".encode() * (1 + round_)
        before = {a: _revision(await _etag(writer, tally, a)) for a in _ancestors(path)}
        if path in expected:  # overwrite only the version this client last saw (elsewhere)
            current = await _etag(reader, tally, path)
            put = await writer.put(_dav(path), content=body, headers={"If-Match": f'"{current}"'})
            tally.expect(put, 204)
        else:
            tally.expect(await writer.put(_dav(path), content=body), 201)
        expected[path] = body
        got = tally.expect(await reader.get(_dav(path)), 200)
        if got.content != body:
            tally.stale_reads.append(f"GET {path} on the other worker: old content")
        for ancestor, revision in before.items():
            if _revision(await _etag(reader, tally, ancestor)) <= revision:
                tally.stale_reads.append(f"{ancestor}: etag did not move after writing {path}")
        if round_ % 4 == 3:
            await _lock_round(writer, reader, tally, path, expected)
        if round_ % 6 == 5:
            moved = f"{folder}/moved {round_}.txt"
            dest = {"Destination": str(writer.base_url) + _dav(moved)}
            tally.expect(await writer.request("MOVE", _dav(path), headers=dest), 201)
            expected[moved] = expected.pop(path)
            tally.expect(await reader.get(_dav(path)), 404)
            if (await reader.get(_dav(moved))).content != expected[moved]:
                tally.stale_reads.append(f"GET {moved} after MOVE: wrong content")


async def _lock_round(
    locker: httpx.AsyncClient,
    other: httpx.AsyncClient,
    tally: Tally,
    path: str,
    expected: dict[str, bytes],
) -> None:
    """A lock taken through one worker is honoured by the other, then released there."""
    locked = tally.expect(
        await locker.request(
            "LOCK", _dav(path), headers={"Timeout": "Second-600"}, content=LOCK_BODY
        ),
        200,
    )
    token = locked.headers["Lock-Token"].strip("<>")
    refused = await other.put(_dav(path), content=b"without the token")
    tally.operations["PUT"] += 1
    assert refused.status_code == 423, f"the other worker ignored the lock: {refused.status_code}"
    body = b"with the lock token\n" + path.encode()
    tally.expect(await other.put(_dav(path), content=body, headers={"If": f"(<{token}>)"}), 204)
    expected[path] = body
    tally.expect(
        await other.request("UNLOCK", _dav(path), headers={"Lock-Token": f"<{token}>"}), 204
    )
    tally.expect(await locker.put(_dav(path), content=body), 204)


async def _listing(client: httpx.AsyncClient, folder: str) -> list[str]:
    response = await client.request("PROPFIND", _dav(folder + "/"), headers={"Depth": "1"})
    assert response.status_code == 207, response.text
    hrefs = [
        unquote(h.text or "") for h in etree.fromstring(response.content).iterfind(".//d:href", NS)
    ]
    prefix = "/remote.php/dav/files/alice"
    return sorted(h[len(prefix) :] for h in hrefs if not h.endswith("/"))


async def test_concurrent_clients_alternating_workers_see_one_consistent_store(
    cluster: Cluster,
) -> None:
    tally = Tally()
    expected: dict[str, bytes] = {}
    workers = cluster.urls[:2]
    async with (
        httpx.AsyncClient(base_url=workers[0], auth=("alice", PASSWORD), timeout=120) as a,
        httpx.AsyncClient(base_url=workers[1], auth=("alice", PASSWORD), timeout=120) as b,
    ):
        runs = [_client_run(index, [a, b], tally, expected) for index in range(CLIENTS)]
        results = await asyncio.gather(*runs, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        print(f"operations: {dict(tally.operations)}")
        assert not tally.stale_reads, tally.stale_reads
        assert not tally.spurious, tally.spurious
        assert not failures, failures
        # No file lost: both workers list exactly what was acknowledged, with its bytes.
        for index in range(CLIENTS):
            folder = f"/client {index}/sub"
            wanted = sorted(p for p in expected if p.startswith(folder + "/"))
            for client in (a, b):
                assert await _listing(client, folder) == wanted
        for path, body in expected.items():
            got = await b.get(_dav(path))
            assert hashlib.sha256(got.content).digest() == hashlib.sha256(body).digest(), path


async def test_an_app_password_revoked_through_one_worker_is_refused_by_the_other(
    cluster: Cluster,
) -> None:
    a_url, b_url, _ = cluster.urls
    async with httpx.AsyncClient(timeout=60) as http:
        minted = await http.get(
            a_url + "/ocs/v2.php/core/getapppassword?format=json",
            auth=("alice", PASSWORD),
            headers={"OCS-APIREQUEST": "true", "User-Agent": "cross-worker test"},
        )
        assert minted.status_code == 200, minted.text
        token = minted.json()["ocs"]["data"]["apppassword"]
        for _ in range(3):  # verified, then served from worker b's credential cache
            seen = await http.request(
                "PROPFIND", b_url + _dav("/"), auth=("alice", token), headers={"Depth": "0"}
            )
            assert seen.status_code == 207
        revoked = await http.delete(
            a_url + "/ocs/v2.php/core/apppassword?format=json", auth=("alice", token)
        )
        assert revoked.status_code == 200, revoked.text
        refused = await http.request(
            "PROPFIND", b_url + _dav("/"), auth=("alice", token), headers={"Depth": "0"}
        )
        assert refused.status_code == 401


async def test_a_chunked_upload_sent_to_both_workers_is_assembled_by_either(
    cluster: Cluster,
) -> None:
    urls = cluster.urls
    chunks = [bytes([index]) * (256 * 1024 + index) for index in range(6)]
    uploads = "/remote.php/dav/uploads/alice/cross-1"
    async with httpx.AsyncClient(auth=("alice", PASSWORD), timeout=120) as http:
        made = await http.request("MKCOL", urls[0] + uploads)
        assert made.status_code == 201, made.text
        for index, chunk in enumerate(chunks):  # worker a, worker b, nginx, worker a, …
            put = await http.put(f"{urls[index % 3]}{uploads}/{index:05d}", content=chunk)
            assert put.status_code == 201, put.text
        destination = {"Destination": urls[1] + _dav("/assembled.bin")}
        moved = await http.request("MOVE", urls[1] + uploads + "/.file", headers=destination)
        assert moved.status_code == 201, moved.text
        elsewhere = {"Destination": urls[0] + _dav("/assembled.bin")}
        again = await http.request("MOVE", urls[0] + uploads + "/.file", headers=elsewhere)
        assert again.status_code == 404  # the upload is gone everywhere once assembled
        got = await http.get(urls[0] + _dav("/assembled.bin"))
        assert got.content == b"".join(chunks)


def test_serve_with_two_workers_on_sqlite_serialises_writers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`ecrin serve --workers 2` on one SQLite file: both processes write, none fails."""
    import psutil

    root = tmp_path_factory.mktemp("sqlite-workers")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRIN_")}
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    command = [sys.executable, "-m", "ecrin", "serve", "--data-dir", str(root / "data")]
    with (root / "serve.log").open("wb") as output:
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while not answers(port):
            assert server.poll() is None, (root / "serve.log").read_text("utf-8")
            assert time.monotonic() < deadline, "ecrin serve --workers 2 did not answer"
            time.sleep(0.05)  # readiness polling, bounded by the deadline
        log = (root / "serve.log").read_text("utf-8")
        password = next(
            line.split(":", 1)[1].strip()
            for line in log.splitlines()
            if line.strip().startswith("password:")
        )
        workers = [
            child
            for child in psutil.Process(server.pid).children(recursive=True)
            if "ecrin" in " ".join(child.cmdline())
            or "multiprocessing" in " ".join(child.cmdline())
        ]
        assert len(workers) >= 2, workers
        statuses = asyncio.run(_sqlite_writers(f"http://127.0.0.1:{port}", password))
        assert set(statuses) <= {201, 204, 207}, statuses
        assert statuses[201] == 8 * 5 and statuses[204] == 8 * 15
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert "Traceback" not in (root / "serve.log").read_text("utf-8")


async def _sqlite_writers(url: str, password: str) -> Counter[int]:
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(
        base_url=url, auth=("admin", password), timeout=120, limits=limits
    ) as http:

        async def writer(index: int) -> None:
            base = f"/remote.php/dav/files/admin/w{index}"
            made = await http.request("MKCOL", base)
            assert made.status_code == 201, made.text
            for round_ in range(20):
                put = await http.put(f"{base}/f{round_ % 5}", content=b"%d" % round_)
                statuses[put.status_code] += 1
                listing = await http.request("PROPFIND", base + "/", headers={"Depth": "1"})
                statuses[listing.status_code] += 1

        await asyncio.gather(*(writer(index) for index in range(8)))
    return statuses


async def test_two_workers_asked_to_assemble_one_upload_at_once_assemble_it_once(
    cluster: Cluster,
) -> None:
    """Both MOVEs of one chunked upload arrive together, one per worker: one assembles it,
    the other is refused (423 while the first runs, 404 once it is done), never twice."""
    a_url, b_url, _ = cluster.urls
    chunks = [bytes([65 + index]) * (2 * 1024 * 1024) for index in range(6)]
    uploads = "/remote.php/dav/uploads/alice/cross-2"
    async with httpx.AsyncClient(auth=("alice", PASSWORD), timeout=120) as http:
        assert (await http.request("MKCOL", a_url + uploads)).status_code == 201
        for index, chunk in enumerate(chunks):
            put = await http.put(f"{(a_url, b_url)[index % 2]}{uploads}/{index:05d}", content=chunk)
            assert put.status_code == 201, put.text
        moves = [
            http.request(
                "MOVE",
                url + uploads + "/.file",
                headers={"Destination": url + _dav("/twice.bin")},
            )
            for url in (a_url, b_url)
        ]
        statuses = sorted(response.status_code for response in await asyncio.gather(*moves))
        assert statuses in ([201, 404], [201, 423]), statuses
        got = await http.get(a_url + _dav("/twice.bin"))
        assert got.content == b"".join(chunks)
