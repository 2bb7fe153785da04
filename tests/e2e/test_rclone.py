"""rclone's WebDAV backend with `vendor = nextcloud`, against a real Ecrin server.

rclone is stateless: every run lists both sides and compares size and modification time,
so the server must return exactly the mtime rclone sent (X-OC-Mtime). The same tree as the
desktop test goes up, a second run must transfer nothing, server-side WebDAV changes come
down, local changes go up; both sides are compared by SHA-256 after every step.
(rclone 1.60, the Debian 12 version, sends big files in one PUT: it has no chunking yet.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.nextcloud_fixtures import (
    BIG_FILE,
    BIG_SIZE,
    Account,
    EcrinProcess,
    divergences,
    ecrin_server,
    local_tree,
    make_tree,
    server_tree,
    tree_file,
)

__all__ = ["ecrin_server"]  # the module-scoped server fixture used below

RCLONE = shutil.which("rclone")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(RCLONE is None, reason="rclone is not installed"),
]

REMOTE_FOLDER = "synced tree"
_TRANSFERRED = re.compile(r"Transferred:\s+(\d+) / (\d+)")


@dataclass
class RcloneRun:
    returncode: int
    output: str
    seconds: float

    @property
    def files_transferred(self) -> int:
        counts = _TRANSFERRED.findall(self.output)
        return int(counts[-1][0]) if counts else 0

    @property
    def deleted(self) -> list[str]:
        return re.findall(r"INFO\s+: (.+): Deleted", self.output)


def rclone(account: Account, tmp: Path, *args: str) -> RcloneRun:
    """One rclone command; the remote `ecrin:` is configured in the environment only."""
    assert RCLONE is not None
    obscured = subprocess.run(
        [RCLONE, "obscure", account.app_password], capture_output=True, text=True, check=True
    ).stdout.strip()
    environment = {
        **os.environ,
        "RCLONE_CONFIG": str(tmp / "no-rclone.conf"),
        "RCLONE_CONFIG_ECRIN_TYPE": "webdav",
        "RCLONE_CONFIG_ECRIN_URL": account.server.url + account.dav_root,
        "RCLONE_CONFIG_ECRIN_VENDOR": "nextcloud",
        "RCLONE_CONFIG_ECRIN_USER": account.name,
        "RCLONE_CONFIG_ECRIN_PASS": obscured,
    }
    started = time.monotonic()
    result = subprocess.run(
        [RCLONE, *args, "-v", "--retries", "1"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )
    return RcloneRun(result.returncode, result.stdout + result.stderr, time.monotonic() - started)


def assert_in_sync(account: Account, local: Path) -> None:
    differences = divergences(local_tree(local), server_tree(account, REMOTE_FOLDER))
    assert differences == [], "\n".join(differences[:50])


def assert_ok(run: RcloneRun) -> None:
    assert run.returncode == 0, run.output[-5000:]


@pytest.mark.slow
def test_full_cycle(ecrin_server: EcrinProcess, tmp_path: Path) -> None:
    account = ecrin_server.new_user("rclone")
    local = tmp_path / "local"
    local.mkdir()
    make_tree(local, seed=2)
    files = sum(1 for p in local.rglob("*") if p.is_file())
    assert files >= 500
    remote = f"ecrin:{REMOTE_FOLDER}"
    timings: dict[str, float] = {}

    # 1. First upload. rclone does not create empty folders unless asked.
    run = rclone(account, tmp_path, "sync", str(local), remote, "--create-empty-src-dirs")
    assert_ok(run)
    timings["first upload"] = run.seconds
    assert run.files_transferred == files
    assert_in_sync(account, local)

    # 2. Nothing changed: sizes and mtimes read back must match, so nothing is sent.
    run = rclone(account, tmp_path, "sync", str(local), remote, "--create-empty-src-dirs")
    assert_ok(run)
    timings["no-op run"] = run.seconds
    assert run.files_transferred == 0, run.output[-3000:]
    assert "There was nothing to transfer" in run.output
    run = rclone(account, tmp_path, "check", str(local), remote)  # sizes and SHA1s
    assert_ok(run)
    assert "0 differences found" in run.output

    # 3. Changes on the server come down.
    with account.client() as dav:
        root = f"{account.dav_root}/{REMOTE_FOLDER}"

        def url(path: str) -> str:
            return root + quote("/" + path)

        assert dav.put(url(tree_file(0)), content=b"edited on the server").status_code == 204
        assert dav.put(url("new on server.txt"), content=b"fresh").status_code == 201
        for source, target in (
            (tree_file(3), "Documents/moved from 日本語.txt"),
            ("music & sound", "Documents/music & sound"),
        ):
            response = dav.request("MOVE", url(source), headers={"Destination": url(target)})
            assert response.status_code == 201, response.text
        assert dav.delete(url(tree_file(1))).status_code == 204
        assert dav.delete(url("deep/level 1/level 2")).status_code == 204
    run = rclone(account, tmp_path, "sync", remote, str(local), "--create-empty-src-dirs")
    assert_ok(run)
    timings["server changes down"] = run.seconds
    assert (local / tree_file(0)).read_bytes() == b"edited on the server"
    assert not (local / "deep/level 1/level 2").exists()
    assert_in_sync(account, local)

    # 4. Changes on the client go up, renames as server-side moves (SHA1 from oc:checksums).
    (local / tree_file(2)).write_bytes(b"edited locally")
    (local / "Photos 2024/new here.txt").write_bytes(b"local")
    (local / BIG_FILE).rename(local / "Videos/big movie renamed.bin")
    (local / tree_file(7)).unlink()
    shutil.rmtree(local / "Ünïcødé ordner")
    run = rclone(
        account,
        tmp_path,
        "sync",
        str(local),
        remote,
        "--create-empty-src-dirs",
        "--track-renames",
    )
    assert_ok(run)
    timings["client changes up"] = run.seconds
    assert "Renamed" in run.output or "Moved" in run.output, run.output[-3000:]
    assert run.files_transferred < 5  # the 50 MiB file was moved, not sent again
    assert_in_sync(account, local)
    assert (local / "Videos/big movie renamed.bin").stat().st_size == BIG_SIZE

    # 5. And quiet again, both ways.
    for source, target in ((str(local), remote), (remote, str(local))):
        run = rclone(account, tmp_path, "sync", source, target, "--create-empty-src-dirs")
        assert_ok(run)
        assert run.files_transferred == 0 and run.deleted == [], run.output[-3000:]
    assert "Traceback" not in ecrin_server.log_tail(100_000)
    print("rclone timings (s):", {k: round(v, 2) for k, v in timings.items()})


def test_lsjson_reports_what_was_uploaded(ecrin_server: EcrinProcess, tmp_path: Path) -> None:
    """A quick one: mtimes and SHA1 checksums survive the round trip."""
    account = ecrin_server.new_user("quickrc")
    local = tmp_path / "local"
    local.mkdir()
    (local / "a b.txt").write_bytes(b"hello")
    os.utime(local / "a b.txt", (1_600_000_000, 1_600_000_000))
    assert_ok(rclone(account, tmp_path, "copy", str(local), "ecrin:q"))
    run = rclone(account, tmp_path, "lsjson", "ecrin:q", "--hash")
    assert_ok(run)
    assert '"ModTime":"2020-09-13T12:26:40Z"' in run.output.replace(" ", "")
    assert "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d" in run.output  # SHA1 of b"hello"
