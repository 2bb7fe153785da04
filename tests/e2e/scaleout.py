"""The scale-out test profile: servers as 2 workers behind nginx, on shared back-ends.

With `ECRIN_TEST_PROFILE=scaleout`, every server the e2e fixtures start is two `ecrin serve`
processes on ports of their own, behind an nginx on the server's port that alternates
between them (round robin, keep-alive upstream, bodies streamed both ways: the documented
configuration, scripts/services/nginx/ecrin.conf). Each server gets a fresh PostgreSQL
database, S3 prefix and Redis key prefix (tests/backends.py finds the services), so a
client that alternates workers sees whatever each one committed.

`spawn_server()` is the seam: it returns a `subprocess.Popen` in the embedded profile and a
`WorkerGroup`, which answers the same calls, in the scale-out one.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from tests.backends import (
    backend_setting,
    empty_redis_prefix,
    empty_s3_prefix,
    redis_test_location,
    s3_test_location,
)
from tests.profile import run_async, scaleout_profile

WORKERS = 2
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
SITE_TEMPLATE = Path(__file__).parents[2] / "scripts" / "services" / "nginx" / "ecrin.conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int, path: str = "/status.php") -> bool:
    """True once something on `port` answers an HTTP GET with 200."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


# --- back-ends of one instance -----------------------------------------------------------


@dataclass
class SharedBackends:
    """A fresh PostgreSQL database, S3 prefix and Redis key prefix for one server."""

    database_url: str
    storage_url: str
    s3_access_key_id: str
    s3_secret_access_key: str
    redis_url: str
    redis_key_prefix: str

    @classmethod
    def create(cls) -> SharedBackends:
        import asyncpg

        admin_url = backend_setting("ECRIN_TEST_DATABASE_URL", "PostgreSQL").replace(
            "postgresql+asyncpg://", "postgresql://", 1
        )
        storage_url, key_id, secret = s3_test_location()
        redis_url, prefix = redis_test_location()
        name = "ecrin_e2e_" + secrets.token_hex(6)

        async def create_database() -> None:
            admin = await asyncpg.connect(admin_url)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()

        run_async(create_database)
        database_url = urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
        return cls(database_url, storage_url, key_id, secret, redis_url, prefix)

    def environment(self) -> dict[str, str]:
        """The ECRIN_* settings every process of the instance (and the CLI) runs with."""
        return {
            "ECRIN_DATABASE_URL": self.database_url,
            "ECRIN_STORAGE_URL": self.storage_url,
            "ECRIN_S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "ECRIN_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "ECRIN_REDIS_URL": self.redis_url,
            "ECRIN_REDIS_KEY_PREFIX": self.redis_key_prefix,
        }

    def destroy(self) -> None:
        import asyncpg

        admin_url = urlunsplit(urlsplit(self.database_url)._replace(path="/postgres"))
        name = urlsplit(self.database_url).path.lstrip("/")

        async def drop() -> None:
            admin = await asyncpg.connect(admin_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            await empty_s3_prefix(
                self.storage_url, self.s3_access_key_id, self.s3_secret_access_key
            )
            await empty_redis_prefix(self.redis_url, self.redis_key_prefix)

        run_async(drop)


# --- nginx -------------------------------------------------------------------------------


def nginx_configuration(root: Path, port: int, backends: list[int]) -> str:
    """The documented site, wrapped in what one nginx of its own needs (paths under root)."""
    servers = "\n".join(
        f"    server 127.0.0.1:{backend} max_fails=1 fail_timeout=2s;" for backend in backends
    )
    site = SITE_TEMPLATE.read_text("utf-8")
    site = site.replace("@SERVERS@", servers).replace("@LISTEN@", f"127.0.0.1:{port}")
    temp = root / "tmp"
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {root / 'nginx.pid'};\n"
        f"error_log {root / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {root / 'access.log'};\n"
        f"    client_body_temp_path {temp / 'body'};\n"
        f"    proxy_temp_path {temp / 'proxy'};\n"
        f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
        f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
        f"    scgi_temp_path {temp / 'scgi'};\n"
        f"{site}\n}}\n"
    )


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise AssertionError("nginx is not installed (a Debian package: see scripts/test)")
    return found


def start_nginx(root: Path, port: int, backends: list[int]) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / "tmp" / name).mkdir(parents=True, exist_ok=True)
    config = root / "nginx.conf"
    config.write_text(nginx_configuration(root, port, backends), "utf-8")
    with (root / "nginx.out").open("wb") as output:
        return subprocess.Popen(
            [
                nginx_binary(),
                "-g",
                "daemon off;",
                "-c",
                str(config),
                "-p",
                str(root),
                "-e",
                str(root / "error.log"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


# --- a group of workers behind nginx -----------------------------------------------------


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class WorkerGroup:
    """`WORKERS` `ecrin serve` processes and the nginx in front; answers like a Popen."""

    command: list[str]  # `ecrin serve …` without --host/--port
    env: dict[str, str]
    output: IO[bytes]
    port: int
    nginx_root: Path
    worker_ports: list[int] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # One after the other: the first creates the schema and the administrator.
        for _ in range(WORKERS):
            port = free_port()
            worker = subprocess.Popen(
                [*self.command, "--host", "127.0.0.1", "--port", str(port)],
                stdout=self.output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
            self.worker_ports.append(port)
            self.workers.append(worker)
            self._wait(functools.partial(answers, port), f"worker on port {port}")
        self.nginx = start_nginx(self.nginx_root, self.port, self.worker_ports)
        self._wait(lambda: answers(self.port, "/lb-health"), "nginx")

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if self.poll() is not None:
                raise AssertionError(f"{what}: a process of the group exited")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not answer in time")
            time.sleep(0.05)  # readiness polling, bounded by the deadline

    @property
    def worker_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.worker_ports]

    # --- what callers of a Popen use -----------------------------------------------------

    @property
    def pid(self) -> int:
        return self.workers[0].pid

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        for process in [*self.workers, *([self.nginx] if self.nginx else [])]:
            code = process.poll()
            if code is not None:
                return code
        return None

    def send_signal(self, sig: int) -> None:
        if sig == signal.SIGTERM:
            self.stop()
        else:
            for process in self.workers:
                process.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        for process in [*self.workers, *([self.nginx] if self.nginx else [])]:
            process.wait(timeout)
        return 0

    def kill(self) -> None:
        for process in [*self.workers, *([self.nginx] if self.nginx else [])]:
            if process.poll() is None:
                process.kill()

    def stop(self) -> None:
        if self.nginx is not None:
            _stop(self.nginx, STOP_TIMEOUT)
        for process in self.workers:
            _stop(process, STOP_TIMEOUT)


def spawn_server(
    command: list[str], port: int, output: IO[bytes], env: dict[str, str], root: Path
) -> subprocess.Popen[bytes] | WorkerGroup:
    """`ecrin serve` (`command`, without host and port) reachable on `port`: one process in
    the embedded profile, a started `WorkerGroup` in the scale-out one."""
    if not scaleout_profile():
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    group = WorkerGroup(command, env, output, port, root / f"nginx-{port}")
    try:
        group.start()
    except BaseException:
        group.stop()
        raise
    return group
