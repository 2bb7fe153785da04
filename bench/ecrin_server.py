"""Ecrin, embedded profile: one process, SQLite metadata, blobs on local disk, fsync on (the
defaults), run with the `ecrin` command line of the Python environment running the benchmark.

`EcrinServer(fsync=False)` ("ecrin-nofsync", only on request) is the same with `fsync = false`:
it shows what durability costs, on the terms the peers run on. `EcrinServer(encryption=True)`
("ecrin-encrypted", only on request) shows what encryption at rest costs. `EcrinServer(workers=2)`
("ecrin-2w", only on request) is `ecrin serve --workers 2`: two processes on the same SQLite
file and blobs, coordinating through `coordination.sqlite3` in the data folder (no Redis)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.client import BenchError
from bench.processes import HOST, Credentials, Launch, server_environment

QUIET = {"ECRIN_LOG_LEVEL": "warning"}


def ecrin_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "ecrin", *arguments]


class EcrinServer:
    def __init__(self, fsync: bool = True, encryption: bool = False, workers: int = 1) -> None:
        self.fsync = fsync
        self.encryption = encryption
        self.workers = workers
        self.name = (
            ("ecrin" if fsync else "ecrin-nofsync")
            + ("-encrypted" if encryption else "")
            + (f"-{workers}w" if workers > 1 else "")
        )
        self._environment = {
            **QUIET,
            "ECRIN_FSYNC": "true" if fsync else "false",
            "ECRIN_ENCRYPTION": "true" if encryption else "false",
        }

    def missing(self) -> str | None:
        return None

    def describe(self) -> str:
        from ecrin import __version__

        durability = "fsync on" if self.fsync else "fsync OFF"
        encrypted = ", encrypted at rest (key file)" if self.encryption else ""
        processes = (
            f"{self.workers} worker processes (uvicorn), coordinating through a SQLite file"
            if self.workers > 1
            else "1 process (uvicorn)"
        )
        return (
            f"Ecrin {__version__} — {processes}, SQLite WAL + local blobs, {durability}{encrypted}"
        )

    def prepare(self, directory: Path, credentials: Credentials) -> None:
        data = directory / "data"
        result = subprocess.run(
            ecrin_command(
                "user",
                "add",
                credentials.user,
                f"--password={credentials.password}",  # one word: it may begin with "-"
                "--data-dir",
                str(data),
            ),
            capture_output=True,
            text=True,
            check=False,
            env=server_environment(self._environment),
        )
        if result.returncode != 0:
            raise BenchError(f"ecrin user add failed: {result.stdout}{result.stderr}")

    def launch(self, directory: Path, port: int, credentials: Credentials) -> Launch:
        command = ecrin_command("serve", "--data-dir", str(directory / "data"))
        command += ["--host", HOST, "--port", str(port)]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        return Launch(command, f"/remote.php/dav/files/{credentials.user}/", self._environment)

    def release(self, directory: Path) -> None:
        return None  # its database and blobs are in its folder


def database_path(directory: Path) -> Path:
    return directory / "data" / "ecrin.sqlite3"


def blobs_path(directory: Path) -> Path:
    return directory / "data" / "blobs"
