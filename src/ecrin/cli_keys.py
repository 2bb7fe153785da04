"""`ecrin keys …`: encryption at rest — status, new, rotate, retire, encrypt-existing."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from ecrin.app import Runtime, build_runtime
from ecrin.core.errors import BadRequest, Conflict
from ecrin.services.contents import move_into_store
from ecrin.settings import Settings, load_settings
from ecrin.storage.encryption.conversion import ConversionReport, encrypt_existing
from ecrin.storage.encryption.key_file import new_kek_id
from ecrin.storage.encryption.rotation import RotationReport, census, rotate
from ecrin.storage.encryption.store import EncryptedBlobStore


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings({"data_dir": args.data_dir}, config_file=args.config)


def _with_store(
    args: argparse.Namespace,
    work: Callable[[EncryptedBlobStore, Runtime], Awaitable[Any]],
    *,
    allow_unencrypted: bool = False,
) -> Any:
    settings = _settings(args)
    if not settings.encryption:
        raise BadRequest("encryption is off: set `encryption = true` first (docs/encryption.md)")

    async def main() -> Any:
        runtime = build_runtime(settings)
        assert isinstance(runtime.blobs, EncryptedBlobStore)
        runtime.blobs.allow_unencrypted = allow_unencrypted
        await runtime.open()
        try:
            return await work(runtime.blobs, runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def cmd_status(args: argparse.Namespace) -> int:
    async def work(store: EncryptedBlobStore, _runtime: Runtime) -> int:
        found = await census(store)
        if args.json:
            print(
                json.dumps(
                    {
                        "current": found.current,
                        "available": found.available,
                        "blobs_by_kek": dict(found.by_kek),
                        "blobs_without_key_record": len(found.without_record),
                    }
                )
            )
            return 0
        print(f"key-encryption keys in {store.keks.description}:")
        for kek in sorted(set(found.available) | set(found.by_kek)):
            marks = [m for m, on in (("current", kek == found.current),) if on]
            if kek not in found.available:
                marks.append("MISSING: these blobs cannot be read")
            label = f" ({', '.join(marks)})" if marks else ""
            print(f"  {kek}: {found.by_kek.get(kek, 0)} blobs{label}")
        if found.without_record:
            print(
                f"{len(found.without_record)} blobs have no key record (unencrypted, or "
                "orphans of an interrupted write: see `ecrin keys encrypt-existing` and "
                "`ecrin check`)"
            )
        return 0

    code: int = _with_store(args, work)
    return code


def cmd_new(args: argparse.Namespace) -> int:
    async def work(store: EncryptedBlobStore, _runtime: Runtime) -> str:
        kek = args.id or new_kek_id()
        await store.keks.create(kek)
        return kek

    kek = _with_store(args, work)
    settings = _settings(args)
    print(f"created key-encryption key {kek}")
    if settings.kek_provider == "file" and not settings.kek_id:
        print("new files use it after the next restart; `ecrin keys rotate` moves the others")
        print(f"back up {settings.effective_kek_file} now")
    else:
        print(f"set kek_id = {kek!r}, restart, then run `ecrin keys rotate`")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    def progress(report: RotationReport) -> None:
        print(
            f"examined {report.examined}: rewrapped {report.rewrapped}, left as they were "
            f"{report.already}, failed {len(report.failed)}",
            flush=True,
        )

    async def work(store: EncryptedBlobStore, _runtime: Runtime) -> RotationReport:
        return await rotate(
            store, args.to, source=args.source, batch_size=args.batch, progress=progress
        )

    report: RotationReport = _with_store(args, work)
    if report.failed:
        print(f"{len(report.failed)} blobs could not be rewrapped (see the log):")
        for blob_id in report.failed[:20]:
            print(f"  {blob_id}")
        return 1
    print(f"done: {report.rewrapped} rewrapped under {report.target}")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    async def work(store: EncryptedBlobStore, _runtime: Runtime) -> int:
        if args.id == store.kek_id:
            raise Conflict(f"{args.id} is the current key: make another one current first")
        found = await census(store, find_unencrypted=False)
        remaining = found.by_kek.get(args.id, 0)
        if remaining and not args.shred:
            raise Conflict(
                f"{remaining} blobs are still under {args.id}: run `ecrin keys rotate` first, "
                "or pass --shred to make them unreadable for good"
            )
        await store.keks.destroy(args.id)
        return remaining

    shredded = _with_store(args, work)
    print(f"destroyed key-encryption key {args.id}")
    if shredded:
        print(f"{shredded} blobs under it can no longer be read by anyone (crypto-shredded)")
    return 0


def cmd_encrypt_existing(args: argparse.Namespace) -> int:
    def progress(report: ConversionReport) -> None:
        print(
            f"examined {report.examined}: encrypted {report.encrypted} "
            f"({report.bytes_encrypted} bytes), already encrypted {report.already}, "
            f"failed {len(report.failed)}",
            flush=True,
        )

    def moved(count: int) -> None:
        if count % 1000 == 0:
            print(f"moved {count} small files from the database into the store", flush=True)

    async def work(store: EncryptedBlobStore, runtime: Runtime) -> ConversionReport:
        report = await encrypt_existing(store, progress=progress)
        # Then the small files kept in the database: written encrypted, then forgotten there.
        report.encrypted_from_database = await move_into_store(runtime.metadata, store, moved)
        return report

    report: ConversionReport = _with_store(args, work, allow_unencrypted=True)
    if report.orphans:
        print(
            f"{len(report.orphans)} encrypted bodies have no key record (left by interrupted "
            "writes; `ecrin check --repair` removes those nothing references)"
        )
    if report.failed:
        print(f"{len(report.failed)} blobs could not be encrypted (see the log):")
        for blob_id, reason in list(report.failed.items())[:20]:
            print(f"  {blob_id}: {reason}")
        return 1
    print(
        f"done: {report.encrypted} blobs encrypted and verified, "
        f"{report.encrypted_from_database} small files moved from the database encrypted"
    )
    return 0


def add_keys_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    keys = sub.add_parser("keys", help="encryption keys at rest")
    commands = keys.add_subparsers(dest="keys_command", required=True)
    status = commands.add_parser(
        "status", parents=[common], help="how many blobs each key-encryption key protects"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    new = commands.add_parser("new", parents=[common], help="create a key-encryption key")
    new.add_argument("--id", help="its id (the label in a PKCS#11 token); default: random")
    new.set_defaults(func=cmd_new)
    rotation = commands.add_parser(
        "rotate",
        parents=[common],
        help="rewrap every data key under one key-encryption key (online, resumable)",
    )
    rotation.add_argument("--to", help="the target key (default: the current one)")
    rotation.add_argument(
        "--from", dest="source", help="only blobs under this key (default: all others)"
    )
    rotation.add_argument("--batch", type=int, default=256, help="records per durable batch")
    rotation.set_defaults(func=cmd_rotate)
    retire = commands.add_parser(
        "retire", parents=[common], help="destroy a key-encryption key no blob uses"
    )
    retire.add_argument("id")
    retire.add_argument(
        "--shred", action="store_true", help="even if blobs use it: they become unreadable"
    )
    retire.set_defaults(func=cmd_retire)
    existing = commands.add_parser(
        "encrypt-existing",
        parents=[common],
        help="encrypt blobs written before encryption was on (server stopped; resumable)",
    )
    existing.set_defaults(func=cmd_encrypt_existing)
