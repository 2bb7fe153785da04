"""The `ecrin` command line: serve, users and app passwords, check, config."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import getpass
import importlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from ecrin import __version__
from ecrin.app import Runtime, build_runtime, create_app
from ecrin.auth.passwords import generate_password
from ecrin.cli_keys import add_keys_parser
from ecrin.cli_sharing import add_sharing_parsers
from ecrin.cli_storage import add_storage_parser
from ecrin.core.errors import EcrinError
from ecrin.services.accounts import AccountService
from ecrin.services.consistency import DEFAULT_GRACE_SECONDS
from ecrin.settings import SETTINGS, Settings, load_settings, render_reference

log = logging.getLogger("ecrin")

# glibc's malloc serves a block of 128 KiB or more by mmap, but raises that threshold to the
# size of any such block freed (up to 32 MiB): from then on, blocks that big come from the
# heap of the thread's arena and stay resident after free. An argon2 check allocates its
# 19 MiB that way, on whichever executor thread runs it, so every thread kept 19 MiB (a
# worker grew by 100 MiB or more under load). A fixed threshold ends the adjustment: blocks
# from 2 MiB up (argon2's memory, S3 parts) go back to the system as soon as they are freed,
# while 1 MiB read buffers still come from the heap; heaps give back free space above 4 MiB.
MMAP_THRESHOLD_BYTES = 2 * 1024 * 1024
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: getattr(args, name, None) for name in ("data_dir", "host", "port", "workers")
    }
    return load_settings(overrides, config_file=args.config)


def _run(settings: Settings, work: Callable[[Runtime], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        runtime = build_runtime(settings)
        await runtime.open()
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


# --- serve -------------------------------------------------------------------------------


def release_large_blocks() -> bool:
    """Make this process's malloc give large freed blocks back (see MMAP_THRESHOLD_BYTES).

    Returns whether it could (glibc); elsewhere the allocator is left as it is."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_BYTES)
    )


# Where the hard limit is "unlimited", the kernel still refuses more than its own maximum
# (Linux's fs.nr_open, 1,048,576 by default).
OPEN_FILES_WANTED = 1 << 20


def raise_open_file_limit() -> int | None:
    """Raise this process's limit of open files to what the system lets it have (the soft
    limit up to the hard one), as nginx's `worker_rlimit_nofile` and Go programs do: every
    connection is a descriptor, and a large download holds up to four (its file and the
    windows of it mapped in memory, storage/local.py), so the usual soft limit of 1,024
    would cap a worker at a few hundred downloads. Returns the soft limit then in force
    (None where there is no such limit)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with suppress(ValueError, OSError):  # refused: the limit stays as it was
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# CPython's cycle collector runs every 700 net allocations of container objects and scans
# every young object each time, then the survivors again as they age. A PROPFIND of 10,000
# entries allocates some 60,000 (rows, nodes, entries) that live until its response is
# written: at 700 they were scanned over and over, a third of the request's time. Request
# objects are freed by reference counting long before 50,000; cycles still get collected.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Collect cycles less often, and never scan what was loaded before serving (modules,
    the app): frozen objects stay out of the collector's generations for good."""
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def app_from_environment() -> Any:
    """The app factory uvicorn workers call; settings travel in ECRIN_* variables."""
    release_large_blocks()
    raise_open_file_limit()
    app = create_app(load_settings())
    # Loaded by the first streamed response otherwise (that request waited for the import).
    importlib.import_module("anyio._backends._asyncio")
    tune_garbage_collector()
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # Workers are separate processes that resolve the settings again, from the same
    # environment and config file, plus the flags given here: so the workers a reload
    # (SIGHUP) starts read the config file as it is then.
    for setting in SETTINGS:
        if getattr(args, setting.name, None) is not None:
            os.environ[setting.env_var] = str(getattr(settings, setting.name))
    if args.config is not None:
        os.environ["ECRIN_CONFIG"] = str(args.config.resolve())
    # Several workers without redis_url coordinate through the data folder (coordination_for).
    admin_password = _run(settings, _first_start)
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(f"Ecrin {__version__} is starting on {url}", flush=True)
    print(f"  WebDAV:   {url}/remote.php/dav/files/<user>/", flush=True)
    print(f"  Data:     {settings.data_dir.resolve()}", flush=True)
    if admin_password:
        print("  First start: an administrator account was created.", flush=True)
        print("    user:     admin", flush=True)
        print(f"    password: {admin_password}", flush=True)
        print("  This password is shown only once: keep it now.", flush=True)
    # The first start loaded the whole app and opened its database and blob store; a
    # process that serves (one worker) or supervises (several) need not keep that: it
    # becomes a fresh interpreter (`ecrin/workers.py`), same process id. A supervisor then
    # holds ~14 MiB instead of ~115 MiB, and each worker loads the app for itself.
    command = [sys.executable, "-m", "ecrin.workers"]
    if settings.workers > 1:
        command += ["supervise", settings.host, str(settings.port), str(settings.workers)]
    else:
        command += ["serve"]
    if os.name != "posix":
        return subprocess.call(command)
    os.execv(command[0], command)
    return 0  # not reached


async def _first_start(runtime: Runtime) -> str | None:
    accounts = runtime.services.accounts
    if await accounts.has_users():
        return None
    password = generate_password()
    await accounts.create_user("admin", password, display_name="Administrator", is_admin=True)
    return password


# --- users -------------------------------------------------------------------------------


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if os.environ.get("ECRIN_PASSWORD"):
        return os.environ["ECRIN_PASSWORD"]
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            raise EcrinError("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_user(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(runtime: Runtime) -> None:
        accounts = runtime.services.accounts
        if args.user_command == "add":
            password = _password(args) if not args.generate else generate_password()
            user = await accounts.create_user(
                args.name,
                password,
                display_name=args.display_name,
                quota_bytes=args.quota,
                is_admin=args.admin,
            )
            print(f"created user {user.name}")
            if args.generate:
                print(f"password: {password}")
        elif args.user_command == "passwd":
            await accounts.set_password(args.name, _password(args))
            print(f"password of {args.name} changed")
        elif args.user_command == "quota":
            await accounts.set_quota(args.name, args.bytes if args.bytes > 0 else None)
            print(f"quota of {args.name} set")
        elif args.user_command == "list":
            for user in await accounts.list_users():
                quota = "unlimited" if user.quota_bytes is None else str(user.quota_bytes)
                admin = " admin" if user.is_admin else ""
                print(f"{user.name}\t{user.used_bytes} bytes used\tquota {quota}{admin}")
        elif args.user_command == "delete":
            await accounts.delete_user(args.name)
            print(f"deleted user {args.name} and all their files")
        elif args.user_command == "token":
            await _token(args, accounts)

    _run(settings, work)
    return 0


async def _token(args: argparse.Namespace, accounts: AccountService) -> None:
    if args.token_command == "create":
        record, token = await accounts.create_app_password(args.name, args.label)
        print(f"app password {record.id} ({record.name}); it is shown only once:")
        print(token)
    elif args.token_command == "list":
        for record in await accounts.list_app_passwords(args.name):
            used = record.last_used_at or "never"
            print(f"{record.id}\t{record.name}\tlast used: {used}")
    elif args.token_command == "revoke":
        await accounts.revoke_app_password(args.name, args.id)
        print(f"app password {args.id} revoked")


# --- check and config --------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(runtime: Runtime) -> Any:
        return await runtime.services.consistency.check(
            repair=args.repair,
            verify_checksums=args.verify_checksums,
            grace_seconds=args.grace,
        )

    report = _run(settings, work)
    findings = {
        "orphan blobs": report.orphan_blobs,
        "missing blobs": report.missing_blobs,
        "checksum mismatches": report.checksum_mismatches,
        "stale temporary files": report.stale_temp_files,
        "reference counts": report.refcount_fixes,
        "usage totals": report.usage_fixes,
        "expired chunked uploads": report.expired_uploads,
    }
    if args.json:
        print(json.dumps({"clean": report.clean, "repaired": report.repaired, **findings}))
    else:
        for label, items in findings.items():
            if items:
                verb = "fixed" if args.repair else "found"
                print(f"{label}: {len(items)} {verb}")
                for item in items[:20]:
                    print(f"  {item}")
        print("clean" if report.clean else ("repaired" if args.repair else "problems found"))
    unrepairable = report.missing_blobs or report.checksum_mismatches
    return 0 if report.clean or (args.repair and not unrepairable) else 1


def cmd_config(args: argparse.Namespace) -> int:
    if args.config_command == "reference":
        print(render_reference(), end="")
        return 0
    settings = _settings(args)
    secret = {s.name for s in SETTINGS if s.secret}
    for name, value in settings.as_dict().items():
        print(f"{name} = {'(hidden)' if name in secret and value else value!s}")
    return 0


# --- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="data folder (default ./ecrin-data)")
    common.add_argument("--config", type=Path, help="TOML config file")

    parser = argparse.ArgumentParser(prog="ecrin", description="Ecrin, a sovereign cloud.")
    parser.add_argument("--version", action="version", version=f"ecrin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=cmd_serve)

    user = sub.add_parser("user", help="manage users and app passwords")
    users = user.add_subparsers(dest="user_command", required=True)
    add = users.add_parser("add", parents=[common], help="create a user")
    add.add_argument("name")
    add.add_argument("--password", help="the password (else ECRIN_PASSWORD, stdin or a prompt)")
    add.add_argument("--generate", action="store_true", help="generate and print a password")
    add.add_argument("--display-name")
    add.add_argument("--quota", type=int, help="quota in bytes")
    add.add_argument("--admin", action="store_true")
    passwd = users.add_parser("passwd", parents=[common], help="change a password")
    passwd.add_argument("name")
    passwd.add_argument("--password")
    quota = users.add_parser("quota", parents=[common], help="set a quota (0: unlimited)")
    quota.add_argument("name")
    quota.add_argument("bytes", type=int)
    users.add_parser("list", parents=[common], help="list users")
    delete = users.add_parser("delete", parents=[common], help="delete a user and their files")
    delete.add_argument("name")
    token = users.add_parser("token", help="app passwords for sync clients")
    tokens = token.add_subparsers(dest="token_command", required=True)
    create = tokens.add_parser("create", parents=[common], help="create an app password")
    create.add_argument("name")
    create.add_argument("--label", default="app password", help="what it is for")
    listing = tokens.add_parser("list", parents=[common], help="list app passwords")
    listing.add_argument("name")
    revoke = tokens.add_parser("revoke", parents=[common], help="revoke an app password")
    revoke.add_argument("name")
    revoke.add_argument("id", type=int)
    user.set_defaults(func=cmd_user)

    check = sub.add_parser("check", parents=[common], help="check metadata against blobs")
    check.add_argument("--repair", action="store_true", help="fix what can be fixed")
    check.add_argument("--verify-checksums", action="store_true", help="re-hash every blob")
    check.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        help="ignore blobs younger than this many seconds (uploads in flight)",
    )
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)

    config = sub.add_parser("config", help="show the configuration")
    configs = config.add_subparsers(dest="config_command", required=True)
    configs.add_parser("show", parents=[common], help="the settings in force")
    configs.add_parser("reference", help="every setting, as Markdown")
    config.set_defaults(func=cmd_config)

    add_keys_parser(sub, common)
    add_sharing_parsers(sub, common)
    add_storage_parser(sub, common)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not hasattr(args, "config"):
        args.config = None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema upgrades log their own
    try:
        code = args.func(args)
    except EcrinError as error:
        print(f"ecrin: {error.message}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
