"""Scale-out back-ends: metadata transactions and blob throughput, each engine side by side.

    python -m bench.backends [--database-url postgresql://…] [--s3-url 's3://bucket/?endpoint=…']
                             [--writers 16] [--transactions 2000] [--large-mib 64] [--small 300]

S3 keys come from ECRIN_S3_ACCESS_KEY_ID / ECRIN_S3_SECRET_ACCESS_KEY (scripts/services/
start-s3.sh prints both; its ECRIN_S3_STORAGE_URL is a suitable --s3-url).

Metadata (SQLite in a temporary file, and PostgreSQL if given; fsync/synchronous off on
SQLite only if --no-fsync): upload-shaped write transactions (resolve the home, look the
name up, insert blob row and node, bump the root's revision, add usage) from --writers
concurrent tasks, once into one home and once into one home per writer; then
PROPFIND-shaped read transactions (home + children of a 100-entry folder).

Blobs (local disk, and S3 if given): small files (16 KiB) committed per second with
--writers in flight, then one large file written and read back in MB/s.

Every figure is the best of --rounds rounds, engines interleaved round by round. It measures
one process on this machine: read it as relative cost, not as a cluster's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.machine import describe_machine
from ecrin.core.model import NodeKind
from ecrin.db.sql import SqlMetadataStore
from ecrin.storage.local import LocalBlobStore
from ecrin.storage.protocol import BlobStore

NOW = 1_700_000_000.0


async def timed(work: Callable[[], Awaitable[int]]) -> float:
    """Operations per second of `work` (which returns how many it did)."""
    started = time.perf_counter()
    count = await work()
    return count / (time.perf_counter() - started)


async def metadata_round(url: str, writers: int, transactions: int) -> dict[str, float]:
    store = SqlMetadataStore(url, durable=False, pool_size=writers)
    await store.open()
    try:
        users = []
        async with store.write() as tx:
            for n in range(writers):
                name = f"u{n}-{secrets.token_hex(3)}"
                users.append(await tx.insert_user(name, name, "x", None, False, NOW))

        async def upload(user_id: int, name: str) -> None:
            async with store.write() as tx:
                root = await tx.root_node(user_id)
                await tx.child(root.id, name)
                blob_id = secrets.token_hex(16)
                await tx.insert_blob(blob_id, 100, "0" * 64, NOW)
                await tx.insert_node(
                    parent_id=root.id,
                    owner_id=user_id,
                    name=name,
                    kind=NodeKind.FILE,
                    size=100,
                    mtime=NOW,
                    now=NOW,
                    blob_id=blob_id,
                    sha256="0" * 64,
                )
                await tx.bump_revisions([root.id], 100)
                await tx.add_usage(user_id, 100)

        def uploads(homes: list[int]) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                per_writer = transactions // writers

                async def writer(index: int) -> None:
                    home = homes[index % len(homes)]
                    for n in range(per_writer):
                        await upload(home, f"w{index}-{n}-{secrets.token_hex(2)}")

                await asyncio.gather(*(writer(i) for i in range(writers)))
                return per_writer * writers

            return run

        async with store.write() as tx:  # a folder of 100 files to list
            listed = await tx.insert_user(
                "lister" + secrets.token_hex(3), "l", "x", None, False, NOW
            )
            home = await tx.root_node(listed.id)
            for n in range(100):
                await tx.insert_node(
                    parent_id=home.id,
                    owner_id=listed.id,
                    name=f"file-{n}",
                    kind=NodeKind.FILE,
                    size=1,
                    mtime=NOW,
                    now=NOW,
                )

        async def listings() -> int:
            async def reader() -> None:
                for _ in range(transactions // writers):
                    async with store.read() as tx:
                        root = await tx.root_node(listed.id)
                        await tx.children(root.id)

            await asyncio.gather(*(reader() for _ in range(writers)))
            return (transactions // writers) * writers

        one_home = await timed(uploads([users[0].id]))
        many_homes = await timed(uploads([u.id for u in users]))
        reads = await timed(listings)
        return {
            "uploads_per_s_one_home": one_home,
            "uploads_per_s_many_homes": many_homes,
            "listings_per_s": reads,
        }
    finally:
        await store.close()


async def blob_round(
    store: BlobStore, writers: int, small: int, large_mib: int
) -> dict[str, float]:
    small_data = os.urandom(16 * 1024)
    piece = os.urandom(1024 * 1024)

    async def smalls() -> int:
        async def writer() -> None:
            for _ in range(small // writers):
                w = await store.create()
                await w.write(small_data)
                await store.delete(await w.commit())

        await asyncio.gather(*(writer() for _ in range(writers)))
        return (small // writers) * writers

    started = time.perf_counter()
    w = await store.create()
    for _ in range(large_mib):
        await w.write(piece)
    blob_id = await w.commit()
    write_mb_s = large_mib * 1.048576 / (time.perf_counter() - started)
    started = time.perf_counter()
    async for _ in store.read(blob_id):
        pass
    read_mb_s = large_mib * 1.048576 / (time.perf_counter() - started)
    await store.delete(blob_id)
    return {
        "small_files_per_s": await timed(smalls),
        "large_write_mb_s": write_mb_s,
        "large_read_mb_s": read_mb_s,
    }


def best(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(max(r[key] for r in rounds), 1) for key in rounds[0]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": describe_machine()}
    with tempfile.TemporaryDirectory() as scratch:
        engines: dict[str, Callable[[int], str]] = {
            "sqlite": lambda n: f"sqlite:///{Path(scratch) / f'meta{n}.sqlite3'}"
        }
        if args.database_url:
            engines["postgresql"] = lambda _n: args.database_url
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
        for n in range(args.rounds):
            for name, url in engines.items():
                rounds[name].append(await metadata_round(url(n), args.writers, args.transactions))
        results["metadata"] = {name: best(r) for name, r in rounds.items()}

        stores: dict[str, BlobStore] = {
            "local": LocalBlobStore(Path(scratch) / "blobs", fsync=not args.no_fsync)
        }
        if args.s3_url:
            from ecrin.storage.s3 import S3BlobStore, S3Location, S3Options

            key_id = os.environ.get("ECRIN_S3_ACCESS_KEY_ID", "")
            secret = os.environ.get("ECRIN_S3_SECRET_ACCESS_KEY", "")
            if not (key_id and secret):
                raise SystemExit("set ECRIN_S3_ACCESS_KEY_ID and ECRIN_S3_SECRET_ACCESS_KEY")
            location = S3Location.from_url(args.s3_url)
            stores["s3"] = S3BlobStore(location, S3Options(key_id, secret))
        for store in stores.values():
            await store.open()
        try:
            blob_rounds: dict[str, list[dict[str, float]]] = {name: [] for name in stores}
            for _ in range(args.rounds):
                for name, store in stores.items():
                    blob_rounds[name].append(
                        await blob_round(store, args.writers, args.small, args.large_mib)
                    )
            results["blobs"] = {name: best(r) for name, r in blob_rounds.items()}
        finally:
            for store in stores.values():
                await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__)
    parser.add_argument("--database-url", default="", help="a PostgreSQL database to use")
    parser.add_argument("--s3-url", default="", help="an S3 storage URL (a bucket/prefix)")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--small", type=int, default=320, help="small files per round")
    parser.add_argument("--large-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-fsync", action="store_true", help="local blobs without fsync")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
