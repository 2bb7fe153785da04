"""Encryption at rest: what it costs, plain and encrypted side by side.

    python -m bench.encryption [--level store|app] [--large-mib 256] [--small-count 2000]
                               [--rounds 3] [--no-fsync]

`store`: the same local blob store, bare and wrapped in EncryptedBlobStore. `app`: the whole
app in process (httpx over ASGI: authentication, metadata commits, streaming), PUT and GET.
Plain and encrypted run interleaved round by round (so a busy neighbour hurts both alike),
and each keeps its best round: large-file write and read in MB/s, small-file (4 KiB) write
and read in files/s, and the overhead of encryption in percent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bench.machine import describe_machine
from ecrin.storage.encryption.key_file import KeyFile
from ecrin.storage.encryption.records import LocalKeyRecords
from ecrin.storage.encryption.store import EncryptedBlobStore
from ecrin.storage.local import LocalBlobStore
from ecrin.storage.protocol import BlobStore

CHUNK = 1024 * 1024
SMALL = 4096


def plain_store(root: Path, fsync: bool) -> BlobStore:
    return LocalBlobStore(root / "blobs", fsync=fsync)


def encrypted_store(root: Path, fsync: bool) -> BlobStore:
    return EncryptedBlobStore(
        LocalBlobStore(root / "blobs", fsync=fsync),
        LocalKeyRecords(root / "blobs" / "key-records", fsync=fsync),
        KeyFile(root / "encryption.keys", fsync=fsync),
    )


async def measure(store: BlobStore, large_mib: int, small_count: int) -> dict[str, float]:
    await store.open()
    chunk = os.urandom(CHUNK)
    small = os.urandom(SMALL)
    result: dict[str, float] = {}

    started = time.perf_counter()
    writer = await store.create()
    for _ in range(large_mib):
        await writer.write(chunk)
    large = await writer.commit()
    result["large_write_mb_s"] = large_mib * CHUNK / 1e6 / (time.perf_counter() - started)

    started = time.perf_counter()
    total = 0
    async for piece in store.read(large):
        total += len(piece)
    assert total == large_mib * CHUNK
    result["large_read_mb_s"] = total / 1e6 / (time.perf_counter() - started)

    started = time.perf_counter()
    ids = []
    for _ in range(small_count):
        writer = await store.create()
        await writer.write(small)
        ids.append(await writer.commit())
    result["small_write_files_s"] = small_count / (time.perf_counter() - started)

    started = time.perf_counter()
    for blob_id in ids:
        async for _piece in store.read(blob_id):
            pass
    result["small_read_files_s"] = small_count / (time.perf_counter() - started)
    await store.close()
    return result


async def measure_app(
    root: Path, encryption: bool, fsync: bool, large_mib: int, small_count: int
) -> dict[str, float]:
    import httpx

    from ecrin.app import create_app
    from ecrin.settings import Settings

    app = create_app(Settings(data_dir=root, fsync=fsync, encryption=encryption))
    await app.runtime.open()
    password = "bench password " + os.urandom(4).hex()
    await app.runtime.services.accounts.create_user("bench", password)
    auth = ("bench", password)
    base = "/remote.php/dav/files/bench"
    chunk = os.urandom(CHUNK)
    small = os.urandom(SMALL)
    result: dict[str, float] = {}

    async def body() -> AsyncIterator[bytes]:
        for _ in range(large_mib):
            yield chunk

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        started = time.perf_counter()
        response = await client.put(f"{base}/large", content=body(), auth=auth)
        assert response.status_code == 201, response.status_code
        result["large_write_mb_s"] = large_mib * CHUNK / 1e6 / (time.perf_counter() - started)
        started = time.perf_counter()
        total = 0
        async with client.stream("GET", f"{base}/large", auth=auth) as streamed:
            async for piece in streamed.aiter_bytes():
                total += len(piece)
        assert total == large_mib * CHUNK
        result["large_read_mb_s"] = total / 1e6 / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(small_count):
            response = await client.put(f"{base}/s{i}", content=small, auth=auth)
            assert response.status_code == 201
        result["small_write_files_s"] = small_count / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(small_count):
            response = await client.get(f"{base}/s{i}", auth=auth)
            assert response.content == small
        result["small_read_files_s"] = small_count / (time.perf_counter() - started)
    await app.runtime.close()
    return result


def run(
    large_mib: int, small_count: int, rounds: int, fsync: bool, level: str = "store"
) -> dict[str, object]:
    kinds: dict[str, Callable[[Path, bool], BlobStore]] = {
        "plain": plain_store,
        "encrypted": encrypted_store,
    }
    best: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    for _ in range(rounds):
        for kind, make in kinds.items():
            root = Path(tempfile.mkdtemp(prefix=f"ecrin-bench-{kind}-"))
            try:
                if level == "app":
                    work = measure_app(root, kind == "encrypted", fsync, large_mib, small_count)
                else:
                    work = measure(make(root, fsync), large_mib, small_count)
                numbers = asyncio.run(work)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            for name, value in numbers.items():
                best[kind][name] = max(best[kind].get(name, 0.0), value)
    overhead = {
        name: round(100 * (1 - best["encrypted"][name] / best["plain"][name]), 1)
        for name in best["plain"]
    }
    return {
        "machine": describe_machine(),
        "parameters": {
            "level": level,
            "large_mib": large_mib,
            "small_count": small_count,
            "small_bytes": SMALL,
            "rounds": rounds,
            "fsync": fsync,
        },
        "plain": {k: round(v, 1) for k, v in best["plain"].items()},
        "encrypted": {k: round(v, 1) for k, v in best["encrypted"].items()},
        "slower_percent": overhead,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.encryption", description=__doc__)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--small-count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-fsync", action="store_true", help="measure CPU cost only")
    parser.add_argument("--level", choices=("store", "app"), default="store")
    args = parser.parse_args()
    report = run(args.large_mib, args.small_count, args.rounds, not args.no_fsync, args.level)
    print(json.dumps(report, indent=2))
    print(f"{'':22} {'plain':>10} {'encrypted':>10} {'slower':>8}")
    for name, value in report["plain"].items():  # type: ignore[attr-defined]
        encrypted = report["encrypted"][name]  # type: ignore[index]
        slower = report["slower_percent"][name]  # type: ignore[index]
        print(f"{name:22} {value:>10} {encrypted:>10} {slower:>7}%")


if __name__ == "__main__":
    main()
