"""`ecrin check` reports expired chunked uploads and `--repair` removes them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from ecrin.app import build_runtime
from ecrin.core.clock import ManualClock
from ecrin.services.uploads import ChunkWrite
from ecrin.settings import Settings
from tests.support import PASSWORD


async def _one_chunk() -> AsyncIterator[bytes]:
    yield b"some bytes"


async def _leave_an_upload(data_dir: Path, started: float) -> None:
    runtime = build_runtime(Settings(data_dir=data_dir, fsync=False), ManualClock(started))
    await runtime.open()
    try:
        user = await runtime.services.accounts.create_user("alice", PASSWORD)
        await runtime.services.uploads.begin(user, "abandoned")
        await runtime.services.uploads.put_chunk(user, "abandoned", "0", _one_chunk(), ChunkWrite())
    finally:
        await runtime.close()


def _check(data_dir: Path, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECRIN_")}
    env["ECRIN_UPLOAD_EXPIRY_SECONDS"] = "60"
    command = [sys.executable, "-m", "ecrin", "check", "--json", "--grace", "0"]
    result = subprocess.run(
        [*command, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    report: dict[str, object] = json.loads(result.stdout)
    report["exit"] = result.returncode
    return report


def test_check_finds_and_repair_removes_expired_uploads(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(_leave_an_upload(data_dir, started=time.time() - 120))  # idle for 2 minutes

    found = _check(data_dir)
    assert found["expired chunked uploads"] == ["1/abandoned"]
    assert found["orphan blobs"] == []  # the chunk's blob is referenced, not an orphan
    assert found["clean"] is False

    repaired = _check(data_dir, "--repair")
    assert repaired["expired chunked uploads"] == ["1/abandoned"]
    assert repaired["exit"] == 0

    again = _check(data_dir)
    assert again["clean"] is True
    assert again["exit"] == 0
