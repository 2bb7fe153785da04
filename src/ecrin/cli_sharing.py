"""`ecrin group|share|trash|versions|locks …`: groups, shares, the trash, versions and
WebDAV locks, for admins."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ecrin.app import Runtime, build_runtime
from ecrin.core.model import ShareType
from ecrin.core.paths import DavPath
from ecrin.services.container import Services
from ecrin.services.sharing import ShareRequest
from ecrin.settings import load_settings

Work = Callable[[Services, argparse.Namespace], Awaitable[None]]


def _run(args: argparse.Namespace, work: Work) -> int:
    settings = load_settings({"data_dir": args.data_dir}, config_file=args.config)

    async def main() -> None:
        runtime: Runtime = build_runtime(settings)
        await runtime.open()
        try:
            await work(runtime.services, args)
        finally:
            await runtime.close()

    asyncio.run(main())
    return 0


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- groups ------------------------------------------------------------------------------


async def _group(services: Services, args: argparse.Namespace) -> None:
    groups = services.groups
    if args.group_command == "add":
        group = await groups.create(args.name, args.display_name)
        print(f"created group {group.name}")
    elif args.group_command == "delete":
        await groups.delete(args.name)
        print(f"deleted group {args.name} and the shares made to it")
    elif args.group_command == "list":
        for group in await groups.list_groups():
            members = ", ".join(u.name for u in await groups.members(group.name))
            print(f"{group.name}\t{members}")
    elif args.group_command == "adduser":
        await groups.add_member(args.name, args.user)
        print(f"{args.user} is now in {args.name}")
    elif args.group_command == "removeuser":
        await groups.remove_member(args.name, args.user)
        print(f"{args.user} left {args.name}")


# --- shares ------------------------------------------------------------------------------


async def _share(services: Services, args: argparse.Namespace) -> None:
    owner = await services.accounts.get_user(args.user)
    sharing = services.sharing
    if args.share_command == "list":
        for view in await sharing.describe(owner, await sharing.created_by(owner)):
            share = view.share
            target = view.recipient_name or f"link {share.token}"
            print(
                f"{share.id}\t{view.path}\t{ShareType(share.share_type).name.lower()}\t"
                f"{target}\tpermissions {share.permissions}\texpires {_when(share.expires_at)}"
            )
        return
    if args.share_command == "delete":
        await sharing.delete(owner, args.id)
        print(f"share {args.id} deleted")
        return
    kind = {"user": ShareType.USER, "group": ShareType.GROUP, "link": ShareType.LINK}[
        args.share_command
    ]
    expires = None
    if getattr(args, "expires_days", None):
        expires = services.clock.now() + args.expires_days * 86400
    permissions = args.permissions
    if kind is ShareType.LINK and args.upload_only:
        permissions = 4
    share = await sharing.create(
        owner,
        DavPath.parse(args.path),
        ShareRequest(
            kind,
            permissions=permissions,
            share_with=getattr(args, "recipient", None),
            password=getattr(args, "password", None),
            expires_at=expires,
        ),
    )
    print(f"share {share.id} created")
    if share.token:
        print(f"link: /s/{share.token}  (WebDAV: /public.php/dav/files/{share.token}/)")


# --- trash and versions ------------------------------------------------------------------


async def _trash(services: Services, args: argparse.Namespace) -> None:
    user = await services.accounts.get_user(args.user)
    trash = services.trash
    if args.trash_command == "list":
        for item in await trash.items(user):
            print(
                f"{item.id}\t{item.original_path}\t{item.size} bytes\t"
                f"deleted {_when(item.deleted_at)}"
            )
    elif args.trash_command == "restore":
        print(f"restored to {await trash.restore(user, args.id)}")
    elif args.trash_command == "purge":
        await trash.purge(user, args.id)
        print(f"item {args.id} purged")
    elif args.trash_command == "empty":
        print(f"{await trash.empty(user)} items purged")
    elif args.trash_command == "expire":
        print(f"{await trash.expire(user)} items purged by the retention policy")


async def _versions(services: Services, args: argparse.Namespace) -> None:
    user = await services.accounts.get_user(args.user)
    node = await services.files.stat(user, DavPath.parse(args.path))
    if args.versions_command == "list":
        _, versions = await services.versions.list_versions(user, node.id)
        for version in versions:
            print(
                f"{version.id}\t{version.size} bytes\tsaved {_when(version.created_at)}\t"
                f"sha256 {version.sha256}"
            )
    elif args.versions_command == "restore":
        await services.versions.restore(user, node.id, args.id)
        print(f"version {args.id} of {args.path} is current again")


async def _locks(services: Services, args: argparse.Namespace) -> None:
    user = await services.accounts.get_user(args.user)
    if args.locks_command == "list":
        names = {u.id: u.name for u in await services.accounts.list_users()}
        for lock in await services.locks.held_in(user):
            depth = "infinity" if lock.depth_infinity else "0"
            print(
                f"{lock.token}\t/{'/'.join(lock.path)}\t{lock.scope.value}, depth {depth}\t"
                f"held by {names.get(lock.principal_id, '?')}\tuntil {_when(lock.expires_at)}"
            )
    elif args.locks_command == "break":
        lock = await services.locks.break_lock(user, args.token)
        print(f"lock on /{'/'.join(lock.path)} removed")


# --- parsers -----------------------------------------------------------------------------


def add_sharing_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    def command(parser: argparse.ArgumentParser, work: Work) -> None:
        parser.set_defaults(func=lambda args: _run(args, work))

    group = sub.add_parser("group", help="manage groups")
    groups = group.add_subparsers(dest="group_command", required=True)
    add = groups.add_parser("add", parents=[common], help="create a group")
    add.add_argument("name")
    add.add_argument("--display-name")
    groups.add_parser("delete", parents=[common], help="delete a group").add_argument("name")
    groups.add_parser("list", parents=[common], help="list groups and members")
    for name, text in (("adduser", "add a member"), ("removeuser", "remove a member")):
        member = groups.add_parser(name, parents=[common], help=text)
        member.add_argument("name")
        member.add_argument("user")
    command(group, _group)

    share = sub.add_parser("share", help="manage shares and public links")
    shares = share.add_subparsers(dest="share_command", required=True)
    shares.add_parser("list", parents=[common], help="shares a user made").add_argument("user")
    delete = shares.add_parser("delete", parents=[common], help="revoke a share")
    delete.add_argument("user")
    delete.add_argument("id", type=int)
    for kind in ("user", "group", "link"):
        create = shares.add_parser(
            kind,
            parents=[common],
            help=f"share with a {kind}" if kind != "link" else "create a public link",
        )
        create.add_argument("user", help="who shares")
        create.add_argument("path", help="what, in their files")
        if kind != "link":
            create.add_argument("recipient")
        else:
            create.add_argument("--password")
            create.add_argument("--expires-days", type=int)
            create.add_argument("--upload-only", action="store_true", help="a file drop")
        create.add_argument(
            "--permissions",
            type=int,
            help="1 read, 2 update, 4 create, 8 delete, 16 share; add them up",
        )
    command(share, _share)

    trash = sub.add_parser("trash", help="a user's deleted items")
    trashes = trash.add_subparsers(dest="trash_command", required=True)
    for name in ("list", "empty", "expire"):
        trashes.add_parser(name, parents=[common]).add_argument("user")
    for name in ("restore", "purge"):
        item = trashes.add_parser(name, parents=[common])
        item.add_argument("user")
        item.add_argument("id", type=int)
    command(trash, _trash)

    versions = sub.add_parser("versions", help="earlier versions of a file")
    version_commands = versions.add_subparsers(dest="versions_command", required=True)
    listing = version_commands.add_parser("list", parents=[common])
    listing.add_argument("user")
    listing.add_argument("path")
    restore = version_commands.add_parser("restore", parents=[common])
    restore.add_argument("user")
    restore.add_argument("path")
    restore.add_argument("id", type=int)
    command(versions, _versions)

    locks = sub.add_parser("locks", help="WebDAV locks on a user's files")
    lock_commands = locks.add_subparsers(dest="locks_command", required=True)
    lock_commands.add_parser(
        "list", parents=[common], help="active locks, whoever holds them"
    ).add_argument("user")
    breaking = lock_commands.add_parser(
        "break", parents=[common], help="remove a lock its holder left behind"
    )
    breaking.add_argument("user", help="whose files the lock is on")
    breaking.add_argument("token", help="as `ecrin locks list` shows it")
    command(locks, _locks)
