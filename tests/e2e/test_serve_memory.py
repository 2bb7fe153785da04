"""`ecrin serve --workers 2`: the supervisor does not keep the app it loaded for the first
start (it becomes a fresh uvicorn process), so it stays small beside its workers."""

from __future__ import annotations

import psutil
import pytest

from tests.e2e.conftest import StartServer
from tests.e2e.scaleout import scaleout_profile

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        scaleout_profile(), reason="the scale-out profile runs its workers behind nginx"
    ),
]

MIB = 2**20
SUPERVISOR_MAX_MIB = 60  # Python, uvicorn and multiprocessing; the app alone is ~45 MiB more


def test_the_supervisor_of_two_workers_stays_small(live_server: StartServer) -> None:
    server = live_server(ECRIN_WORKERS="2")
    supervisor = psutil.Process(server.pid)
    assert "uvicorn" in supervisor.cmdline()
    workers = [
        child for child in supervisor.children() if "multiprocessing" in " ".join(child.cmdline())
    ]
    assert workers, "no worker process"
    rss = supervisor.memory_info().rss / MIB
    largest_worker = max(worker.memory_info().rss for worker in workers) / MIB
    assert rss < SUPERVISOR_MAX_MIB, f"supervisor {rss:.0f} MiB (workers {largest_worker:.0f})"
    assert rss < largest_worker
