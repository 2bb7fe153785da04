"""The `ecrin` command line, run as a real process (`python -m ecrin … --data-dir D`).

What the commands change is checked by authenticating against the same data folder.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecrin.app import build_runtime
from ecrin.core.model import LockScope
from ecrin.core.paths import DavPath
from ecrin.services.locks import LockRequest
from ecrin.settings import Settings, render_reference

PASSWORD = "first password, long enough"
NEW_PASSWORD = "second password, long enough"


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ECRIN_")}

    def run(
        self, *args: str, code: int = 0, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "ecrin", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            input=stdin,
            env={**self.env, **env},
            timeout=120,
        )
        assert result.returncode == code, (
            f"ecrin {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}"
        )
        return result

    def logins(self, *attempts: tuple[str, str]) -> list[bool]:
        """Which (login, password) pairs authenticate against the data folder."""

        async def attempt() -> list[bool]:
            runtime = build_runtime(Settings(data_dir=self.data_dir, fsync=False))
            await runtime.open()
            try:
                accounts = runtime.services.accounts
                return [await accounts.authenticate(*pair) is not None for pair in attempts]
            finally:
                await runtime.close()

        return asyncio.run(attempt())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def test_user_add_list_passwd_delete(cli: Cli) -> None:
    assert "created user bob" in cli.run("user", "add", "bob", "--password", PASSWORD).stdout
    generated = cli.run("user", "add", "carol", "--generate", "--quota", "5000").stdout
    carol = generated.split("password:", 1)[1].strip()
    assert len(carol) >= 16
    assert cli.logins(("bob", PASSWORD), ("carol", carol), ("bob", carol)) == [True, True, False]

    listing = cli.run("user", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listing] == ["bob", "carol"]
    assert "quota unlimited" in listing[0] and "quota 5000" in listing[1]

    assert "changed" in cli.run("user", "passwd", "bob", "--password", NEW_PASSWORD).stdout
    assert "deleted user carol" in cli.run("user", "delete", "carol").stdout
    assert cli.logins(("bob", NEW_PASSWORD), ("bob", PASSWORD), ("carol", carol)) == [
        True,
        False,
        False,
    ]
    assert [line.split("\t")[0] for line in cli.run("user", "list").stdout.splitlines()] == ["bob"]


def test_passwords_from_stdin_or_the_environment(cli: Cli) -> None:
    cli.run("user", "add", "dora", stdin=PASSWORD + "\n")
    assert cli.logins(("dora", PASSWORD)) == [True]
    cli.run("user", "passwd", "dora", ECRIN_PASSWORD=NEW_PASSWORD)
    assert cli.logins(("dora", NEW_PASSWORD), ("dora", PASSWORD)) == [True, False]


def test_app_passwords_create_list_revoke(cli: Cli) -> None:
    cli.run("user", "add", "bob", "--password", PASSWORD)
    created = cli.run("user", "token", "create", "bob", "--label", "laptop").stdout
    header, token = created.strip().splitlines()
    assert "shown only once" in header and "laptop" in header
    token_id = header.split()[2]
    tampered = token[:-1] + ("x" if token[-1] != "x" else "y")
    assert cli.logins(("bob", token), ("bob", tampered)) == [True, False]

    listing = cli.run("user", "token", "list", "bob").stdout.splitlines()
    assert len(listing) == 1
    identifier, label, used = listing[0].split("\t")
    assert (identifier, label) == (token_id, "laptop")
    assert used.startswith("last used: ") and "never" not in used  # we just logged in with it

    assert "revoked" in cli.run("user", "token", "revoke", "bob", token_id).stdout
    # The token is dead; the account password is unaffected.
    assert cli.logins(("bob", token), ("bob", PASSWORD)) == [False, True]
    assert cli.run("user", "token", "list", "bob").stdout == ""
    failed = cli.run("user", "token", "revoke", "bob", token_id, code=2)
    assert "no app password" in failed.stderr


def test_an_admin_lists_and_breaks_a_lock_left_behind(cli: Cli) -> None:
    cli.run("user", "add", "bob", "--password", PASSWORD)

    async def lock_and_count(take: bool) -> int:
        runtime = build_runtime(Settings(data_dir=cli.data_dir, fsync=False))
        await runtime.open()
        try:
            services = runtime.services
            bob = await services.accounts.get_user("bob")
            if take:
                request = LockRequest(LockScope.EXCLUSIVE, False, "<d:href>laptop</d:href>", 3600)
                await services.locks.lock(bob, bob, DavPath.parse("/report.odt"), request)
            return len(await services.locks.held_in(bob))
        finally:
            await runtime.close()

    assert asyncio.run(lock_and_count(take=True)) == 1
    listing = cli.run("locks", "list", "bob").stdout.splitlines()
    assert len(listing) == 1
    token, path, kind, holder, _until = listing[0].split("\t")
    assert (path, kind, holder) == ("/report.odt", "exclusive, depth 0", "held by bob")

    assert "lock on /report.odt removed" in cli.run("locks", "break", "bob", token).stdout
    assert asyncio.run(lock_and_count(take=False)) == 0
    assert cli.run("locks", "list", "bob").stdout == ""
    assert "no active lock" in cli.run("locks", "break", "bob", token, code=2).stderr


def test_errors_are_a_message_on_stderr_and_exit_code_2(cli: Cli) -> None:
    cli.run("user", "add", "bob", "--password", PASSWORD)
    for args, message in (
        (("user", "add", "bob", "--password", PASSWORD), "already exists"),
        (("user", "add", "eve", "--password", "short"), "at least"),
        (("user", "delete", "nobody"), "no user"),
    ):
        result = cli.run(*args, code=2)
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith("ecrin: ") and message in last_line, result.stderr
        assert "Traceback" not in result.stderr
    assert cli.logins(("eve", "short"), ("bob", PASSWORD)) == [False, True]


def test_config_reference_prints_the_generated_reference(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ecrin", "config", "reference"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert result.stdout == render_reference()
