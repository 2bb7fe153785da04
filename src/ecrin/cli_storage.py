"""`ecrin storage migrate --to URL`: move file contents to another store (local disk, S3)."""

from __future__ import annotations

import argparse
import asyncio
import time

from ecrin.app import blob_store_at
from ecrin.core.errors import BadRequest
from ecrin.services.storage_migration import MigrationProgress, StorageMigration
from ecrin.settings import Settings, load_settings

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
                return await migration.run(
                    jobs=args.jobs, verify_existing=args.verify_existing, on_progress=report
                )
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
