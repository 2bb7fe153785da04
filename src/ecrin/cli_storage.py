"""Commands that copy what Ecrin stores: `ecrin storage migrate --to URL` (file contents to
another store, local disk or S3) and `ecrin backup DEST` (the whole instance, to a folder)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

from ecrin.app import blob_store_at
from ecrin.core.errors import BadRequest
from ecrin.db.sql import SqlMetadataStore
from ecrin.services.backup import Backup, BackupResult
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


class _ProgressPrinter:
    """Prints a copy's progress every few seconds, and once more when told it is final."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()

    def __call__(self, progress: MigrationProgress, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        rate = progress.bytes_copied / max(now - self.started, 1e-6)
        print(
            f"{progress.done}/{progress.total} blobs: {progress.copied} copied "
            f"({_size(progress.bytes_copied)}, {_size(rate)}/s), "
            f"{progress.already_there} already there, {len(progress.failed)} failed",
            flush=True,
        )


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    source_url = args.source or settings.effective_storage_url
    if source_url.rstrip("/") == args.to.rstrip("/"):
        raise BadRequest("the source and the destination are the same store")
    report = _ProgressPrinter()

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


async def backup_to(
    settings: Settings,
    destination: Path,
    *,
    jobs: int = 4,
    verify_existing: bool = False,
    say: Callable[[str], None] = lambda _: None,
    on_progress: Callable[[MigrationProgress], None] | None = None,
) -> BackupResult:
    """`ecrin backup`: the instance `settings` describe, backed up into `destination`."""
    settings = dataclasses.replace(settings, fsync=True)  # a backup is always durable
    metadata = SqlMetadataStore(settings.effective_database_url)
    destination = await asyncio.to_thread(_elsewhere, destination, settings, metadata)
    copy_url = f"file://{destination / 'blobs'}"
    blobs = blob_store_at(settings, settings.effective_storage_url)
    copies = blob_store_at(settings, copy_url)
    async with AsyncExitStack() as stack:
        for store in (metadata, blobs, copies):
            await store.open()
            stack.push_async_callback(store.close)
        records = None
        if settings.encryption:  # the key records live beside the blobs
            storage_url = settings.effective_storage_url
            records = partial(_copy_key_records, settings, blobs, storage_url, copies, copy_url)
        backup = Backup(
            metadata,
            blobs,
            destination,
            copies,
            open_copy=lambda path: SqlMetadataStore(f"sqlite:///{path}"),
            copy_key_records=records,
        )
        return await backup.run(
            jobs=jobs, verify_existing=verify_existing, say=say, on_progress=on_progress
        )


def _elsewhere(destination: Path, settings: Settings, metadata: SqlMetadataStore) -> Path:
    """`destination`, resolved, if it is none of the folders the instance keeps data in."""
    destination = destination.resolve()
    live = {settings.data_dir.resolve(), Path(urlparse(settings.effective_storage_url).path)}
    if metadata.is_sqlite and metadata.url.database:
        live.add(Path(metadata.url.database).resolve().parent)
    if destination in live or destination / "blobs" in live:
        raise BadRequest(f"{destination} is where the instance keeps its data: back up elsewhere")
    return destination


def cmd_backup(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = _ProgressPrinter()
    print(f"backing up to {args.destination}", flush=True)
    result = asyncio.run(
        backup_to(
            settings,
            args.destination,
            jobs=args.jobs,
            verify_existing=args.verify_existing,
            say=lambda line: print(line, flush=True),
            on_progress=report,
        )
    )
    report(result.blobs, True)
    if result.key_records:
        print(f"{result.key_records} key records copied and verified", flush=True)
    if result.removed:
        print(f"{result.removed} blobs no longer needed removed from the backup", flush=True)
    print(f"backup complete: `ecrin serve --data-dir {args.destination}` runs it", flush=True)
    if settings.encryption:
        print("the key that unlocks it is not in it: keep a copy of that key elsewhere")
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
    _copy_options(migrate)
    migrate.set_defaults(func=cmd_migrate)

    backup = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the instance to a folder it runs from (incremental, SHA-256 verified)",
    )
    backup.add_argument("destination", type=Path, help="folder to write the backup to")
    _copy_options(backup)
    backup.set_defaults(func=cmd_backup)


def _copy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=4, help="blobs copied at once")
    parser.add_argument(
        "--verify-existing",
        action="store_true",
        help="re-hash blobs already in the destination instead of trusting them",
    )
