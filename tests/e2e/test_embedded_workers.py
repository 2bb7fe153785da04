"""`ecrin serve --workers 2` on the embedded profile (SQLite, local disk, no Redis): the two
workers coordinate through `coordination.sqlite3` in the data folder.

Every request goes on a fresh connection, and the test finds out which worker answered it
(the process holding the server end of that connection), so it knows both workers took
part: an app password revoked through one is refused by both on the next requests, and
every file acknowledged by one is listed by the other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import pytest

from tests.e2e.conftest import LiveServer, StartServer
from tests.profile import scaleout_profile

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(scaleout_profile(), reason="the embedded profile's own coordination"),
]

MAX_ATTEMPTS = 200  # fresh connections tried before concluding one worker never answers


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    worker: int  # the pid of the process that answered


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _workers(server: LiveServer) -> list[psutil.Process]:
    return psutil.Process(server.pid).children(recursive=True)


def _ask(
    server: LiveServer,
    method: str,
    path: str,
    authorization: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a connection of its own, and the worker that served it."""
    connection = server.connection(timeout=30)
    try:
        connection.request(
            method, path, body=body, headers={"Authorization": authorization, **(headers or {})}
        )
        response = connection.getresponse()
        content = response.read()
        assert connection.sock is not None
        client_port = connection.sock.getsockname()[1]
        for process in _workers(server):
            try:
                sockets = process.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(s.raddr and s.raddr.port == client_port for s in sockets):
                return Answer(response.status, content, process.pid)
        raise AssertionError("no worker holds the connection")
    finally:
        connection.close()


def _until_both_answered(ask: Callable[[], Answer], times: int = 3) -> list[Answer]:
    """Repeat `ask()` on fresh connections until each of the 2 workers answered `times`."""
    answers: list[Answer] = []
    counts: dict[int, int] = {}
    for _ in range(MAX_ATTEMPTS):
        answers.append(ask())
        counts = {}
        for answer in answers:
            counts[answer.worker] = counts.get(answer.worker, 0) + 1
        if len(counts) >= 2 and min(counts.values()) >= times:
            return answers
    raise AssertionError(f"one worker never answered: {counts}")


def test_two_embedded_workers_share_revocations_and_files(live_server: StartServer) -> None:
    server = live_server(ECRIN_WORKERS="2")
    admin = _basic(server.user, server.password)
    assert (server.data_dir / "coordination.sqlite3").exists()

    # An app password, verified (and cached) by both workers.
    minted = _ask(
        server,
        "GET",
        "/ocs/v2.php/core/getapppassword?format=json",
        admin,
        headers={"OCS-APIREQUEST": "true", "User-Agent": "embedded workers test"},
    )
    assert minted.status == 200, minted.body
    token = _basic(server.user, json.loads(minted.body)["ocs"]["data"]["apppassword"])
    home = server.dav_path("/")
    depth0 = {"Depth": "0"}
    seen = _until_both_answered(lambda: _ask(server, "PROPFIND", home, token, None, depth0))
    assert {answer.status for answer in seen} == {207}

    # Files written through either worker are listed by both, at once.
    made = _ask(server, "MKCOL", server.dav_path("/shared"), admin)
    assert made.status == 201
    written: list[str] = []
    writers: set[int] = set()
    listers: set[int] = set()
    for index in range(MAX_ATTEMPTS):
        name = f"f{index}.txt"
        put = _ask(server, "PUT", server.dav_path(f"/shared/{name}"), admin, b"%d" % index)
        assert put.status == 201, put.body
        written.append(name)
        writers.add(put.worker)
        listing = _ask(server, "PROPFIND", server.dav_path("/shared/"), admin, None, {"Depth": "1"})
        assert listing.status == 207
        listers.add(listing.worker)
        for other in written:
            assert f"/shared/{other}".encode() in listing.body, (other, listing.worker)
        if len(writers) == 2 and len(listers) == 2 and index >= 10:
            break
    assert len(writers) == 2 and len(listers) == 2

    # Revoked through one worker: refused by both from the next request on. (Last: the
    # wrong guesses count against this network, and would throttle the writes above.)
    revoked = _ask(server, "DELETE", "/ocs/v2.php/core/apppassword?format=json", token)
    assert revoked.status == 200, revoked.body
    refused = _until_both_answered(lambda: _ask(server, "PROPFIND", home, token, None, depth0))
    statuses = [(answer.worker, answer.status) for answer in refused]
    # 401, and 429 once the wrong guesses counted by both workers together reach the limit.
    assert {status for _, status in statuses} <= {401, 429}, statuses
    assert refused[0].status == 401, statuses
    assert "Traceback" not in server.log_tail(lines=10_000)
