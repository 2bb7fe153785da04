"""Starting and stopping a server under test: free port, log file, readiness, clean stop.

Every server (Ecrin and the peers) is described by a `Server`: it prepares its folder once,
says how to launch itself on a port, and releases what it made outside the folder at the end.
`start` runs it and waits until its WebDAV root answers (and, for a server of several workers,
until each worker has said it is ready). Servers run without the ECRIN_* variables of the
shell that started the benchmark: each Ecrin profile sets the settings it runs with.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from bench.client import BenchError, Endpoint

HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


@dataclass(frozen=True)
class LogMarker:
    """The server is ready once its log holds `count` lines containing `text` (one a worker)."""

    text: str
    count: int


@dataclass(frozen=True)
class Launch:
    command: list[str]
    base_path: str  # the user's WebDAV root on the server, e.g. "/dav/"
    env: Mapping[str, str] = field(default_factory=dict)
    ready_log: LogMarker | None = None  # wait for this too, not only for a first answer


class Server(Protocol):
    name: str  # short id used on the command line and in the JSON: "ecrin", "apache", ...

    def missing(self) -> str | None:
        """Why this server cannot run here (not installed…), or None."""

    def describe(self) -> str:
        """Name, version and the configuration that matters for the comparison."""

    def prepare(self, directory: Path, credentials: Credentials) -> None:
        """Create the data folder and the user, once per instance."""

    def launch(self, directory: Path, port: int, credentials: Credentials) -> Launch:
        """Write the configuration for `port` and say how to run the server in the foreground."""

    def release(self, directory: Path) -> None:
        """Remove what `prepare` created outside `directory` (a database, an S3 prefix…),
        once, after the last round; the runner deletes the folder itself."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def server_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without ECRIN_* variables, plus `extra`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ECRIN_")}
    environment.update(extra)
    return environment


def open_for_workers(directory: Path) -> None:
    """Let servers that drop root (Apache, nginx workers run as www-data) reach `directory`."""
    directory.chmod(0o755)


def give_to_worker_user(path: Path, user: str = "www-data") -> None:
    """chown -R to the worker user when running as root (else the workers are us already)."""
    if os.geteuid() != 0:
        return
    for item in [path, *path.rglob("*")]:
        shutil.chown(item, user, user)


@dataclass
class RunningServer:
    name: str
    endpoint: Endpoint
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_log: LogMarker | None = None
    log_start: int = 0  # where this start's lines begin (a log may be appended to)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM the server we started, wait for it and its workers; SIGKILL what lingers."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            children = []
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _gone, alive = psutil.wait_procs(children, timeout=STOP_TIMEOUT_SECONDS)
        for child in alive:
            child.kill()


def start(server: Server, directory: Path, credentials: Credentials) -> RunningServer:
    port = free_port()
    launch = server.launch(directory, port, credentials)
    log_path = directory / f"{server.name}-{port}.log"
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            launch.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_environment(launch.env),
            cwd=directory,
        )
    endpoint = Endpoint(f"http://{HOST}:{port}{launch.base_path}", *_pair(credentials))
    running = RunningServer(server.name, endpoint, process, log_path, launch.ready_log, log_start)
    try:
        wait_ready(running)
    except BaseException:
        running.stop()
        raise
    return running


def _pair(credentials: Credentials) -> tuple[str, str]:
    return credentials.user, credentials.password


def wait_ready(running: RunningServer) -> None:
    """Poll PROPFIND Depth 0 on the WebDAV root until it answers 207, then wait for the
    server's log to say every worker is ready (when the launch named a marker)."""
    endpoint = running.endpoint
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, endpoint.base_url, endpoint.user, endpoint.password)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last_error = "no answer"
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise BenchError(f"{running.name} exited at start:\n{log_tail(running.log_path)}")
        request = urllib.request.Request(
            endpoint.base_url, method="PROPFIND", headers={"Depth": "0"}
        )
        try:
            with opener.open(request, timeout=5) as response:
                if response.status != 207:
                    last_error = f"HTTP {response.status}"
                elif _log_ready(running):
                    return
                else:
                    last_error = f"answers, but its log lacks {running.ready_log}"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}"
        except OSError as error:
            last_error = str(error)
        time.sleep(0.1)
    raise BenchError(
        f"{running.name} not ready after {READY_TIMEOUT_SECONDS:.0f} s ({last_error}):\n"
        f"{log_tail(running.log_path)}"
    )


def _log_ready(running: RunningServer) -> bool:
    marker = running.ready_log
    if marker is None:
        return True
    try:
        with running.log_path.open("rb") as log:
            log.seek(running.log_start)
            text = log.read().decode(errors="replace")
    except OSError:
        return False
    return sum(marker.text in line for line in text.splitlines()) >= marker.count


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def command_output(command: list[str]) -> str:
    """stdout+stderr of a short command (a version query), or '' if it cannot run."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    return (result.stdout + result.stderr).strip()
