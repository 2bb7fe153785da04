"""The benchmark's scale-out Ecrin (`ecrin-scaleout`): skipped with its reason without the
services, and, with them, a quick run end to end that leaves nothing behind.

The end-to-end test needs PostgreSQL, S3 and Redis, found as tests/backends.py finds them
(scripts/services/start-test-backends.sh starts them; CI does): without them it is skipped, or
fails when ECRIN_TEST_REQUIRE_BACKENDS=1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.cli import select_servers
from bench.metrics import METRICS
from bench.services import DATABASE_PREFIX, REDIS_PREFIX, S3_PREFIX, VARIABLES, Services

from tests.backends import backend_setting
from tests.profile import run_async

ROOT = Path(__file__).resolve().parents[2]
SERVER = "ecrin-scaleout"


def test_without_its_services_a_default_run_skips_it_and_naming_it_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)

    servers, skipped = select_servers(None)
    assert SERVER not in [s.name for s in servers]
    assert "start-test-backends.sh" in skipped[SERVER]
    assert "ECRIN_TEST_DATABASE_URL" in skipped[SERVER]

    with pytest.raises(SystemExit, match=f"{SERVER}: .*start-test-backends.sh"):
        select_servers(f"ecrin,{SERVER}")


async def _leftovers(services: Services) -> set[str]:
    """Every database, S3 object and Redis key a benchmark instance could leave behind."""
    import asyncpg
    import redis.asyncio as aioredis

    from ecrin.storage.s3 import S3BlobStore, S3Location, S3Options

    found: set[str] = set()
    connection = await asyncpg.connect(services.admin_database_url)
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", DATABASE_PREFIX
        )
        found |= {"database " + row["datname"] for row in rows}
    finally:
        await connection.close()
    location = S3Location.from_url(services.s3_url)
    store = S3BlobStore(
        location, S3Options(services.s3_access_key_id, services.s3_secret_access_key)
    )
    await store.open()
    try:
        pages = store.client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=location.prefix + S3_PREFIX
        )
        async for page in pages:
            found |= {"object " + item["Key"] for item in page.get("Contents", [])}
    finally:
        await store.close()
    client = aioredis.Redis.from_url(services.redis_url)
    try:
        found |= {f"key {key!r}" async for key in client.scan_iter(match=REDIS_PREFIX + "*")}
    finally:
        await client.aclose()
    return found


@pytest.mark.e2e
def test_quick_run_reports_positive_metrics_and_releases_its_services(tmp_path: Path) -> None:
    for name in VARIABLES:
        backend_setting(name, "the benchmark's scale-out profile")
    services = Services.from_environment()
    before = run_async(lambda: _leftovers(services))

    output = tmp_path / "results.json"
    command = [sys.executable, "-m", "bench", "--quick", "--only", SERVER, "--no-scale"]
    command += ["--output", str(output), "--tmp-dir", str(tmp_path)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]

    results = json.loads(output.read_text())
    assert "PostgreSQL" in results["servers"][SERVER]
    measured = results["metrics"][SERVER]
    for metric in METRICS:
        assert measured[metric.key]["median"] > 0, metric.key
    # The sampler sums the supervisor and both workers: more than its largest process.
    assert measured["peak_rss_mib"]["median"] > measured["peak_rss_process_mib"]["median"]
    assert results["scale"] == {}  # workload (6) is the embedded profile's only
    assert any(SERVER in note for note in results["notes"])
    assert SERVER in run.stdout and "(1)" in run.stdout

    assert run_async(lambda: _leftovers(services)) <= before, "the run left data behind"
    assert not list(tmp_path.glob("ecrin-bench-*")), "temporary data left behind"
