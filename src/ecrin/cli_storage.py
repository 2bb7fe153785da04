"""`ecrin storage migrate --to URL`: move file contents to another store (local disk, S3)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time

from ecrin.app import blob_store_at
from ecrin.core.errors import BadRequest
from ecrin.services.storage_migration import (
    MigrationProgress,
    StorageMigration,
    copy_key_records,
)
from ecrin.settings import Settings, load_settings
from ecrin.storage.encryption.factory import key_records
from ecrin.storage.protocol import BlobStore

PROGRESS_EVERY_SECONDS = 2.0


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings({"data_dir": args.data_dir}, config_file=args.config)


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    source_url = args.source or settings.effective_storage_url
    if source_url.rstrip("/") == args.to.rstrip("/"):
        raise BadRequest("the source and the destination are the same store")
    started = time.monotonic()
    last = [started]

    def report(progress: MigrationProgress, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - last[0] < PROGRESS_EVERY_SECONDS:
            return
        last[0] = now
        rate = progress.bytes_copied / max(now - started, 1e-6)
        print(
            f"{progress.done}/{progress.total} blobs: {progress.copied} copied "
            f"({_size(progress.bytes_copied)}, {_size(rate)}/s), "
            f"{progress.already_there} already there, {len(progress.failed)} failed",
            flush=True,
        )

    async def main() -> MigrationProgress:
        source, destination = blob_store_at(settings, source_url), blob_store_at(settings, args.to)
        await source.open()
        try:
            await destination.open()
            try:
                migration = StorageMigration(source, destination)
                progress = await migration.run(
                    jobs=args.jobs, verify_existing=args.verify_existing, on_progress=report
                )
                if settings.encryption:
                    records = await _copy_key_records(
                        settings, source, source_url, destination, args.to
                    )
                    print(f"{records} key records copied and verified", flush=True)
                return progress
            finally:
                await destination.close()
        finally:
            await source.close()

    print(f"copying blobs from {source_url} to {args.to}", flush=True)
    progress = asyncio.run(main())
    report(progress, final=True)
    for blob_id, problem in sorted(progress.failed.items())[:20]:
        print(f"  {blob_id}: {problem}")
    if progress.failed:
        print("some blobs were not copied: run the same command again", flush=True)
        return 1
    print(
        f"every blob is in {args.to}, verified by SHA-256. To switch: stop Ecrin, run this "
        f"command once more (it copies what was written meanwhile), set storage_url = "
        f'"{args.to}", start Ecrin',
        flush=True,
    )
    return 0


async def _copy_key_records(
    settings: Settings, source: BlobStore, source_url: str, destination: BlobStore, to: str
) -> int:
    """Encryption at rest: the key records live beside the blobs, so they move with them."""
    old = key_records(source, dataclasses.replace(settings, storage_url=source_url))
    new = key_records(destination, dataclasses.replace(settings, storage_url=to))
    await old.open()
    try:
        await new.open()
        try:
            return await copy_key_records(old, new)
        finally:
            await new.close()
    finally:
        await old.close()


def add_storage_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    storage = sub.add_parser("storage", help="file contents: move them to another store")
    commands = storage.add_subparsers(dest="storage_command", required=True)
    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="copy every blob to another store (resumable, SHA-256 verified)",
    )
    migrate.add_argument("--to", required=True, help="destination storage URL (file://, s3://)")
    migrate.add_argument("--from", dest="source", help="source URL (default: storage_url)")
    migrate.add_argument("--jobs", type=int, default=4, help="blobs copied at once")
    migrate.add_argument(
        "--verify-existing",
        action="store_true",
        help="re-hash blobs already in the destination instead of trusting them",
    )
    migrate.set_defaults(func=cmd_migrate)
