"""Rotation rewraps keys without re-encrypting; `ecrin keys` drives it; SIGKILL is survivable."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ecrin.cli import main
from ecrin.core.errors import KeyUnavailable
from ecrin.storage.encryption.format import decode_record
from ecrin.storage.encryption.rotation import census, rotate
from tests.storage.encryption.conftest import body_path, data_dir_store, get, put, record_path


def ecrin(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecrin", "keys", *args, "--data-dir", str(data_dir)],
        env={**os.environ, "ECRIN_ENCRYPTION": "true", "ECRIN_FSYNC": "false"},
        capture_output=True,
        text=True,
        check=check,
        timeout=600,
    )


def content(seed: int) -> bytes:
    return random.Random(seed).randbytes(seed % 301)


async def test_rotation_rewrites_only_records_and_is_idempotent(tmp_path: Path) -> None:
    store = data_dir_store(tmp_path)
    await store.open()
    old = store.kek_id
    blobs = {await put(store, content(i)): content(i) for i in range(40)}
    bodies = {b: body_path(store, b).read_bytes() for b in blobs}
    await store.keks.create("kek-new")
    seen: list[int] = []
    report = await rotate(
        store, "kek-new", batch_size=7, progress=lambda r: seen.append(r.examined)
    )
    assert report.rewrapped == 40 and report.already == 0 and not report.failed
    assert seen[-1] == 40 and len(seen) > 5
    assert {b: body_path(store, b).read_bytes() for b in blobs} == bodies  # bodies untouched
    assert (await census(store)).by_kek == {"kek-new": 40}
    again = await rotate(store, "kek-new")
    assert again.rewrapped == 0 and again.already == 40
    await store.keks.destroy(old)
    for blob_id, data in blobs.items():
        assert await get(store, blob_id) == data
        assert decode_record(record_path(store, blob_id).read_bytes(), blob_id).kek_id == "kek-new"


async def test_rotation_is_online_readers_and_writers_carry_on(tmp_path: Path) -> None:
    store = data_dir_store(tmp_path)
    await store.open()
    blobs = {await put(store, content(i)): content(i) for i in range(200)}
    await store.keks.create("kek-new")
    done = asyncio.Event()
    reads = 0

    async def reader() -> None:
        nonlocal reads
        rng = random.Random(3)
        ids = list(blobs)
        while not done.is_set():
            blob_id = rng.choice(ids)
            assert await get(store, blob_id) == blobs[blob_id]
            reads += 1

    async def rotator() -> None:
        try:
            report = await rotate(store, "kek-new", batch_size=10)
            assert report.rewrapped == 200
        finally:
            done.set()

    await asyncio.gather(reader(), reader(), rotator())
    assert reads >= 5  # reads really ran while records were being replaced
    assert (await census(store)).by_kek == {"kek-new": 200}


async def test_rotation_reports_corrupt_records_and_skips_deleted_blobs(tmp_path: Path) -> None:
    store = data_dir_store(tmp_path)
    await store.open()
    good = await put(store, b"x")
    bad = await put(store, b"xx")
    gone = await put(store, b"xxx")
    path = record_path(store, bad)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    await store.inner.delete(gone)  # body gone, record left: its record must not be rewritten
    await store.keks.create("kek-new")
    report = await rotate(store, "kek-new")
    assert report.failed == [bad]
    assert report.rewrapped == 1 and report.vanished == 1
    assert not record_path(store, gone).exists()
    assert await get(store, good) == b"x"


def test_keys_cli_status_new_rotate_retire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECRIN_ENCRYPTION", "true")
    monkeypatch.setenv("ECRIN_FSYNC", "false")

    async def fill() -> tuple[str, dict[str, bytes]]:
        store = data_dir_store(tmp_path)
        await store.open()
        blobs = {await put(store, content(i)): content(i) for i in range(5)}
        await store.close()
        return store.kek_id, blobs

    first, blobs = asyncio.run(fill())

    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(["keys", *args, "--data-dir", str(tmp_path)])
        captured = capsys.readouterr()
        return int(exit_info.value.code or 0), captured.out + captured.err

    code, out = run("status")
    assert code == 0 and f"{first}: 5 blobs (current)" in out
    code, out = run("new", "--id", "kek-second")
    assert code == 0 and "created key-encryption key kek-second" in out
    code, out = run("retire", first)
    assert code == 2 and "is the current key" not in out and "5 blobs are still under" in out
    code, out = run("rotate")
    assert code == 0 and "done: 5 rewrapped under kek-second" in out
    code, out = run("status", "--json")
    assert '"blobs_by_kek": {"kek-second": 5}' in out
    code, out = run("retire", first)
    assert code == 0
    code, out = run("retire", "kek-second")
    assert code == 2 and "current key" in out

    async def check() -> None:
        store = data_dir_store(tmp_path)
        await store.open()
        for blob_id, data in blobs.items():
            assert await get(store, blob_id) == data

    asyncio.run(check())


@pytest.mark.slow
def test_rotating_10000_blobs_survives_sigkill_and_resumes(tmp_path: Path) -> None:
    count = 10_000

    async def fill() -> tuple[str, list[str]]:
        store = data_dir_store(tmp_path)
        await store.open()
        ids = [await put(store, content(i)) for i in range(count)]
        await store.close()
        return store.kek_id, ids

    old, ids = asyncio.run(fill())
    ecrin(tmp_path, "new", "--id", "kek-next")

    # Kill -9 part way through, once progress shows it is well under way.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecrin",
            "keys",
            "rotate",
            "--batch",
            "100",
            "--data-dir",
            str(tmp_path),
        ],
        env={**os.environ, "ECRIN_ENCRYPTION": "true", "ECRIN_FSYNC": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("examined ") and int(line.split()[1].rstrip(":")) >= count // 3:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL

    status = ecrin(tmp_path, "status").stdout
    assert "kek-next: " in status and f"{old}: " in status
    moved = int(status.split("kek-next: ")[1].split()[0])
    assert 0 < moved < count, status

    finished = ecrin(tmp_path, "rotate", "--batch", "500")
    assert f"done: {count - moved} rewrapped under kek-next" in finished.stdout, finished.stdout
    assert f"kek-next: {count} blobs" in ecrin(tmp_path, "status").stdout
    ecrin(tmp_path, "retire", old)  # refuses if a single blob still needed it

    async def verify() -> None:
        store = data_dir_store(tmp_path)
        await store.open()
        for i, blob_id in enumerate(ids):
            assert await get(store, blob_id) == content(i)
        with pytest.raises(KeyUnavailable):
            await store.keks.unwrap(old, b"\0" * 40)
        leftovers = list((tmp_path / "blobs" / "key-records" / "tmp").iterdir())
        assert len(leftovers) <= 100  # at most the batch the kill interrupted
        await store.clean_temporary(older_than=float("inf"))
        assert list((tmp_path / "blobs" / "key-records" / "tmp").iterdir()) == []
        await store.close()

    asyncio.run(verify())
