"""Ecrin, scale-out profile ("ecrin-scaleout"): `ecrin serve --workers 2` on PostgreSQL, an S3
store and Redis, the services of bench/services.py (never started by the benchmark).

Why uvicorn's own multi-worker socket and not nginx in front, as tests/e2e/scaleout.py does:
`ecrin serve --workers N` is what docs/scaling.md runs on one host. A supervisor binds one
listening socket and N worker processes accept from it, so the kernel spreads the client's
keep-alive connections over the workers (a probe of 32 connections here split 15/17, 21/11
and 23/9). The e2e tests put nginx in front to alternate every request between workers, which
is what proves consistency across them; a benchmark wants the server's cost instead. The peers
are measured without a proxy, and on this 2-core machine an nginx would take CPU from the
workers for a hop a deployment pays anyway, whatever server it fronts. The price: a connection
stays with the worker that accepted it, so the c1 rows run on one worker, where nginx would
alternate their requests.

Each instance (the folder the runner hands to `prepare`) gets a fresh PostgreSQL database, S3
prefix and Redis key prefix, named in the folder's `instance.json` and kept across rounds like
the embedded profile keeps its data folder; `release` drops and empties them after the last
round (the runner skips it with `--keep`). The servers log at `info`, not `warning` like the
embedded one, because readiness waits for each worker's "Application startup complete."
(uvicorn's own lines; Ecrin logs nothing per request). Workload (6) stays embedded-only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.client import BenchError, run_async
from bench.ecrin_server import QUIET, ecrin_command
from bench.processes import HOST, Credentials, Launch, LogMarker, server_environment
from bench.services import (
    Instance,
    Services,
    create_instance,
    missing_services,
    release_instance,
    versions,
)

WORKERS = 2
INSTANCE_FILE = "instance.json"
READY_LINE = "Application startup complete."


class EcrinScaleOutServer:
    name = "ecrin-scaleout"

    def missing(self) -> str | None:
        return missing_services()

    def describe(self) -> str:
        from ecrin import __version__

        services = Services.from_environment()
        found = run_async(versions(services))
        endpoint = parse_qs(urlsplit(services.s3_url).query).get("endpoint", ["AWS"])[-1]
        return (
            f"Ecrin {__version__} — {WORKERS} worker processes (ecrin serve --workers "
            f"{WORKERS}, one socket), PostgreSQL {found['postgresql']} + S3 at {endpoint} + "
            f"Redis {found['redis']}, fsync on"
        )

    def prepare(self, directory: Path, credentials: Credentials) -> None:
        services = Services.from_environment()
        instance = run_async(create_instance(services))
        path = directory / INSTANCE_FILE
        path.touch(mode=0o600)
        path.write_text(json.dumps(instance.as_dict(), indent=2) + "\n")
        command = ecrin_command("user", "add", credentials.user)
        # One word: a random password may begin with "-".
        command += [f"--password={credentials.password}", "--data-dir", str(directory / "data")]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env=server_environment({**QUIET, **instance.environment(services)}),
        )
        if result.returncode != 0:
            raise BenchError(f"ecrin user add failed: {result.stdout}{result.stderr}")

    def launch(self, directory: Path, port: int, credentials: Credentials) -> Launch:
        environment = _instance(directory).environment(Services.from_environment())
        environment["ECRIN_LOG_LEVEL"] = "info"
        command = ecrin_command("serve", "--data-dir", str(directory / "data"))
        command += ["--host", HOST, "--port", str(port), "--workers", str(WORKERS)]
        return Launch(
            command,
            f"/remote.php/dav/files/{credentials.user}/",
            environment,
            LogMarker(READY_LINE, WORKERS),
        )

    def release(self, directory: Path) -> None:
        path = directory / INSTANCE_FILE
        if path.exists():
            run_async(release_instance(Services.from_environment(), _instance(directory)))
            path.unlink()


def _instance(directory: Path) -> Instance:
    return Instance(**json.loads((directory / INSTANCE_FILE).read_text()))
