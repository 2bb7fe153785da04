"""Encryption at rest: the cost of EncryptedBlobStore over the same local blob store.

    python -m bench.encryption [--large-mib 256] [--small-count 2000] [--rounds 3] [--no-fsync]

Runs plain and encrypted side by side, interleaved round by round (so a busy neighbour hurts
both alike), and keeps each one's best round: large-file write and read in MB/s, small-file
(4 KiB) write and read in files/s, and the overhead of encryption in percent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
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


def run(large_mib: int, small_count: int, rounds: int, fsync: bool) -> dict[str, object]:
    kinds: dict[str, Callable[[Path, bool], BlobStore]] = {
        "plain": plain_store,
        "encrypted": encrypted_store,
    }
    best: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    for _ in range(rounds):
        for kind, make in kinds.items():
            root = Path(tempfile.mkdtemp(prefix=f"ecrin-bench-{kind}-"))
            try:
                numbers = asyncio.run(measure(make(root, fsync), large_mib, small_count))
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
    args = parser.parse_args()
    report = run(args.large_mib, args.small_count, args.rounds, not args.no_fsync)
    print(json.dumps(report, indent=2))
    print(f"{'':22} {'plain':>10} {'encrypted':>10} {'slower':>8}")
    for name, value in report["plain"].items():  # type: ignore[attr-defined]
        encrypted = report["encrypted"][name]  # type: ignore[index]
        slower = report["slower_percent"][name]  # type: ignore[index]
        print(f"{name:22} {value:>10} {encrypted:>10} {slower:>7}%")


if __name__ == "__main__":
    main()
