"""A real `ecrin serve` process on 127.0.0.1, for tests that need real sockets and peers.

`live_server()` starts one (its own data folder, a free port), waits until it answers and
reads the administrator password it prints on first start. Every server a test started is
stopped at teardown: SIGTERM, then SIGKILL if it does not exit in time. In the scale-out
profile (tests/e2e/scaleout.py) a server is 2 workers behind nginx on shared back-ends.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.scaleout import SharedBackends, WorkerGroup, spawn_server
from tests.profile import scaleout_profile
from tests.support import run_ecrin

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DAV_PREFIX = "/remote.php/dav/files"


def free_port() -> int:
    """A port nobody listens on right now (the kernel picks it when binding port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without stray ECRIN_* settings, plus the ones asked for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRIN_")}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class LiveServer:
    """One `python -m ecrin serve` process and what a test needs to talk to it."""

    data_dir: Path
    port: int
    env: dict[str, str]
    log_dir: Path
    user: str = "admin"
    password: str = ""
    process: subprocess.Popen[bytes] | WorkerGroup | None = None
    starts: int = 0
    _logs: list[Path] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def dav_path(self, path: str = "/", user: str | None = None) -> str:
        """The URL path of `path` in a user's WebDAV home (the admin's by default)."""
        return f"{DAV_PREFIX}/{user or self.user}" + quote(
            path if path.startswith("/") else "/" + path
        )

    def dav_url(self, path: str = "/", user: str | None = None) -> str:
        return self.base_url + self.dav_path(path, user)

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def auth_header(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        log = self.log_dir / f"server-{self.starts}.log"
        self._logs.append(log)
        command = [sys.executable, "-m", "ecrin", "serve", "--data-dir", str(self.data_dir)]
        with log.open("wb") as output:
            self.process = spawn_server(command, self.port, output, self.env, self.log_dir)
        self._wait_until_ready(log)

    def _wait_until_ready(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the server exited with {self.process.returncode}:\n" + self.log_tail(log)
                )
            if self._answers():
                break
            if time.monotonic() > deadline:
                raise AssertionError("the server did not answer in time:\n" + self.log_tail(log))
            time.sleep(0.05)  # polling for readiness, bounded by the deadline
        for line in log.read_text("utf-8", "replace").splitlines():
            if line.strip().startswith("password:"):
                self.password = line.split(":", 1)[1].strip()
        assert self.password, "the first start printed no administrator password"

    def _answers(self) -> bool:
        connection = self.connection(timeout=2.0)
        try:
            connection.request("GET", "/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash, a power cut for RAM)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop (if still running) and start again on the same port and data folder."""
        self.stop()
        self.start()

    def log_tail(self, log: Path | None = None, lines: int = 40) -> str:
        chosen = log or (self._logs[-1] if self._logs else None)
        if chosen is None or not chosen.exists():
            return ""
        return "\n".join(chosen.read_text("utf-8", "replace").splitlines()[-lines:])

    def ecrin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an `ecrin` command against this server's data folder."""
        return run_ecrin(self.data_dir, self.env, *args, check=check)


StartServer = Callable[..., LiveServer]


@pytest.fixture
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """A factory: `live_server(**env)` starts a server (extra ECRIN_* variables in `env`)."""
    servers: list[LiveServer] = []
    backends: list[SharedBackends] = []

    def start(**env: str) -> LiveServer:
        root = tmp_path_factory.mktemp("live-server")
        if scaleout_profile():
            backends.append(SharedBackends.create())
            env = {**backends[-1].environment(), **env}
        server = LiveServer(
            data_dir=root / "data",
            port=free_port(),
            env=_clean_environment(env),
            log_dir=root,
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
        for shared in backends:
            shared.destroy()
