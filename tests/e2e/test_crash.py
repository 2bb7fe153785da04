"""SIGKILL the server while a client overwrites a large file: no torn file, ever.

Durability contract, points 1 and 2: after every crash and restart the file is exactly the
previous version or the new one, an acknowledged PUT is never lost, an interrupted body is
never visible, and `ecrin check --repair` leaves metadata and blobs consistent.

Each round overwrites a 32 MiB file with a streamed PUT (Content-Length, real socket) and a
second thread kills the server with SIGKILL at a random point of one of four phases:
right after the request headers, in the middle of the body, after the last body byte
(the window where the server flushes, fsyncs and renames the blob and commits the
metadata; the delay is a random fraction, up to 1.3, of the latency measured on complete
uploads),
or right after the response. The kill delays are the fault being injected, not a way to
wait for something.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import random
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pytest

from ecrin import cli
from tests.e2e.conftest import LiveServer, StartServer
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

CHUNK = 1024 * 1024
CHUNKS = 32
SIZE = CHUNK * CHUNKS
PATH = "/big.bin"
WAIT = 120.0
# How many rounds kill in each phase (20 kills in all).
PLAN = {"headers": 3, "body": 5, "commit": 10, "response": 2}


@dataclass(frozen=True)
class Version:
    """One version of the file's contents, generated on demand (never held whole)."""

    number: int
    block: bytes

    def chunks(self) -> Iterator[bytes]:
        for index in range(CHUNKS):
            yield struct.pack(">QQ", self.number, index) + self.block[16:]

    @cached_property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()


@dataclass
class Progress:
    """Moments of one upload, as events the killer thread can wait for."""

    trigger_chunk: int = 0
    headers_sent: threading.Event = field(default_factory=threading.Event)
    chunk_sent: threading.Event = field(default_factory=threading.Event)
    body_sent: threading.Event = field(default_factory=threading.Event)
    responded: threading.Event = field(default_factory=threading.Event)
    body_sent_at: float | None = None
    status: int | None = None
    latency: float | None = None  # last body byte -> response


def put_streaming(server: LiveServer, version: Version, progress: Progress) -> None:
    """PUT the version over a real socket, recording each step; a dying server ends it."""
    connection = server.connection(timeout=WAIT)
    try:
        connection.putrequest("PUT", server.dav_path(PATH), skip_accept_encoding=True)
        connection.putheader("Authorization", server.auth_header())
        connection.putheader("Content-Length", str(SIZE))
        connection.putheader("Content-Type", "application/octet-stream")
        connection.endheaders()
        progress.headers_sent.set()
        for sent, chunk in enumerate(version.chunks(), start=1):
            connection.send(chunk)
            if sent == progress.trigger_chunk:
                progress.chunk_sent.set()
        progress.body_sent_at = time.monotonic()
        progress.body_sent.set()
        response = connection.getresponse()
        response.read()
        progress.latency = time.monotonic() - progress.body_sent_at
        progress.status = response.status
        progress.responded.set()
    except (OSError, http.client.HTTPException):
        pass  # the server died under us: that is the point
    finally:
        connection.close()


def download_sha256(server: LiveServer) -> str:
    connection = server.connection(timeout=WAIT)
    try:
        connection.request(
            "GET", server.dav_path(PATH), headers={"Authorization": server.auth_header()}
        )
        response = connection.getresponse()
        assert response.status == 200, response.status
        digest = hashlib.sha256()
        while chunk := response.read(CHUNK):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        connection.close()


def ecrin_check(server: LiveServer, *args: str) -> dict[str, Any]:
    """`ecrin check --json …` on the server's data folder, through the CLI's own entry point
    but in this process: a new interpreter per call would double the test's run time."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit) as exit_status:
        cli.main(["check", "--json", *args, "--data-dir", str(server.data_dir)])
    assert exit_status.value.code == 0, output.getvalue()
    report: dict[str, Any] = json.loads(output.getvalue())
    return report


def kill_at(server: LiveServer, trigger: threading.Event, delay: float) -> threading.Thread:
    def run() -> None:
        trigger.wait(WAIT)
        time.sleep(delay)  # the injected fault's position, not a synchronisation
        server.kill()

    thread = threading.Thread(target=run, name="killer")
    thread.start()
    return thread


def test_sigkill_during_overwrite_leaves_old_or_new_never_torn(
    live_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("ECRIN_")]:
        monkeypatch.delenv(name)  # the in-process checks see what the server sees
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    context = f"(random seed {seed})"
    block = rng.randbytes(CHUNK)
    server = live_server()

    # A complete first upload, which also measures how long the server takes to commit.
    current = Version(0, block)
    first = Progress()
    put_streaming(server, current, first)
    assert first.status == 201, server.log_tail()
    assert first.latency is not None
    latency = first.latency

    phases = [phase for phase, count in PLAN.items() for _ in range(count)]
    rng.shuffle(phases)
    outcomes: Counter[str] = Counter()
    fractions: list[float] = []  # where in the commit window the kills landed
    debris = 0  # unfinished uploads and unreferenced blobs the crashes left behind
    for number, phase in enumerate(phases, start=1):
        new = Version(number, block)
        progress = Progress(trigger_chunk=rng.randint(1, CHUNKS - 1))
        # Half the commit-phase kills anywhere in the window, half near its end, where the
        # blob is renamed into place and the metadata transaction commits.
        commit_fraction = rng.uniform(0, 1.3) if rng.random() < 0.5 else rng.uniform(0.8, 1.1)
        trigger, delay = {
            "headers": (progress.headers_sent, rng.uniform(0, 0.005)),
            "body": (progress.chunk_sent, rng.uniform(0, 0.002)),
            "commit": (progress.body_sent, latency * commit_fraction),
            "response": (progress.responded, 0.0),
        }[phase]
        killer = kill_at(server, trigger, delay)
        put_streaming(server, new, progress)
        killer.join(WAIT)
        assert not killer.is_alive(), "the killer thread hung"
        server.start()

        where = f"round {number}, killed in phase {phase!r} {context}"
        observed = download_sha256(server)
        assert observed in (current.sha256, new.sha256), f"torn or foreign contents: {where}"
        if progress.status is not None:
            assert progress.status == 204, where
            assert observed == new.sha256, f"an acknowledged PUT was lost: {where}"
            outcomes["acknowledged"] += 1
            assert progress.latency is not None
            latency = progress.latency
        elif not progress.body_sent.is_set():
            assert observed == current.sha256, f"an incomplete body became visible: {where}"
            outcomes["body interrupted"] += 1
        else:
            outcomes["commit window, " + ("new" if observed == new.sha256 else "old")] += 1
            fractions.append(round(commit_fraction, 2))

        repaired = ecrin_check(server, "--repair", "--grace", "0")
        assert not repaired["missing blobs"] and not repaired["checksum mismatches"], where
        debris += len(repaired["orphan blobs"]) + len(repaired["stale temporary files"])
        report = ecrin_check(server, "--grace", "0", "--verify-checksums")
        assert report["clean"], f"{report} after {where}"
        if observed == new.sha256:
            current = new

    print(f"{debris} leftovers cleaned by check --repair")
    print(f"kill outcomes {dict(outcomes)}, commit-window kills at {sorted(fractions)} of")
    print(f"the {latency:.3f} s commit latency {context}")
    assert debris >= 1, "the interrupted uploads left nothing for check --repair to clean"
    assert outcomes["acknowledged"] >= 1, outcomes
    assert outcomes["body interrupted"] >= 1, outcomes
    assert outcomes["commit window, new"] + outcomes["commit window, old"] >= 1, outcomes
