"""The real Nextcloud desktop sync engine (`nextcloudcmd`) against a real Ecrin server.

One account goes through a whole life: a first upload of 500+ files (unicode names,
spaces, an empty file, a 50 MiB file sent in chunks), a run that must transfer nothing,
changes made on the server through WebDAV (edit, rename, move, delete, create) that must
reach the client, changes made locally that must reach the server. After every run both
sides are compared by the SHA-256 of every file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.e2e.nextcloud_fixtures import (
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

NEXTCLOUDCMD = shutil.which("nextcloudcmd")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NEXTCLOUDCMD is None, reason="nextcloudcmd is not installed"),
]

CHUNK_SIZE = 5_000_000
# QNetworkAccessManager operations, as nextcloudcmd logs them; 6 is a custom verb.
OPERATIONS = {"1": "HEAD", "2": "GET", "3": "PUT", "4": "POST", "5": "DELETE"}
_REQUEST = re.compile(r'accessmanager \]:\s+(\d) "([A-Z]*)" "([^"]+)" has X-Request-ID')


@dataclass
class SyncRun:
    returncode: int
    requests: list[tuple[str, str]]  # (method, decoded URL path)
    log: str
    seconds: float

    def transfers(self) -> list[tuple[str, str]]:
        """Every request that is not discovery (status, OCS, PROPFIND)."""
        return [
            (method, path)
            for method, path in self.requests
            if method != "PROPFIND" and not (method == "GET" and not path.startswith("/remote"))
        ]


def sync(account: Account, local: Path, home: Path, **env: str) -> SyncRun:
    """One `nextcloudcmd` run (one sync pass, plus any pass it schedules itself)."""
    assert NEXTCLOUDCMD is not None
    environment = {
        **os.environ,
        "HOME": str(home),  # no user-level client settings leak in
        "OWNCLOUD_CHUNK_SIZE": str(CHUNK_SIZE),
        "OWNCLOUD_MIN_CHUNK_SIZE": str(CHUNK_SIZE),
        "OWNCLOUD_MAX_CHUNK_SIZE": str(CHUNK_SIZE),
        "OWNCLOUD_TARGET_CHUNK_UPLOAD_DURATION": "0",  # fixed-size chunks
        **env,
    }
    started = time.monotonic()
    options = ["--non-interactive", "--trust", "--max-sync-retries", "1"]
    credentials = ["-u", account.name, "-p", account.app_password]
    result = subprocess.run(
        [NEXTCLOUDCMD, *options, *credentials, str(local), account.server.url],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    requests = [
        (verb or OPERATIONS.get(operation, "?"), unquote(urlsplit(url).path))
        for operation, verb, url in _REQUEST.findall(log)
    ]
    return SyncRun(result.returncode, requests, log, seconds)


def assert_in_sync(account: Account, local: Path) -> None:
    differences = divergences(local_tree(local), server_tree(account))
    assert differences == [], "\n".join(differences[:50])


def assert_ok(run: SyncRun) -> None:
    assert run.returncode == 0, run.log[-5000:]


@pytest.mark.slow
def test_full_cycle(ecrin_server: EcrinProcess, tmp_path: Path) -> None:
    account = ecrin_server.new_user("desk")
    local, home = tmp_path / "local", tmp_path / "home"
    home.mkdir()
    local.mkdir()
    make_tree(local)
    assert sum(1 for p in local.rglob("*") if p.is_file()) >= 500
    timings: dict[str, float] = {}

    # 1. First upload: everything goes up; the big file in fixed-size chunks.
    run = sync(account, local, home)
    assert_ok(run)
    timings["first upload"] = run.seconds
    chunk_puts = [p for m, p in run.requests if m == "PUT" and "/dav/uploads/" in p]
    assert len(chunk_puts) == -(-BIG_SIZE // CHUNK_SIZE), chunk_puts
    assemblies = [p for m, p in run.requests if m == "MOVE" and p.endswith("/.file")]
    assert len(assemblies) == 1
    assert_in_sync(account, local)

    # 2. Nothing changed: no transfer at all (the first re-run may re-list folders whose
    #    etag the client did not store after MKCOL; it must still move no bytes).
    for _ in range(2):
        run = sync(account, local, home)
        assert_ok(run)
        assert run.transfers() == [], run.transfers()
    timings["no-op run"] = run.seconds

    # 3. Changes on the server reach the client.
    with account.client() as dav:
        root = account.dav_root

        def url(path: str) -> str:
            return root + quote("/" + path)

        edited = tree_file(0)
        assert dav.put(url(edited), content=b"edited on the server").status_code == 204
        assert dav.put(url("new on server.txt"), content=b"fresh").status_code == 201
        renamed = ("Videos/big movie.bin", "Videos/big movie (renamed).bin")
        moved = ("music & sound", "Documents/music & sound")
        deleted_file, deleted_folder = tree_file(1), "日本語"
        for source, target in (renamed, moved):
            response = dav.request("MOVE", url(source), headers={"Destination": url(target)})
            assert response.status_code == 201, response.text
        assert dav.delete(url(deleted_file)).status_code == 204
        assert dav.delete(url(deleted_folder)).status_code == 204
    run = sync(account, local, home)
    assert_ok(run)
    timings["server changes down"] = run.seconds
    assert (local / edited).read_bytes() == b"edited on the server"
    assert (local / "new on server.txt").read_bytes() == b"fresh"
    assert (local / renamed[1]).stat().st_size == BIG_SIZE
    assert not (local / deleted_folder).exists()
    # Moves are recognised by file id: the client renames, it does not download again.
    downloads = {p for m, p in run.requests if m == "GET" and p.startswith("/remote")}
    assert downloads == {f"{root}/{edited}", f"{root}/new on server.txt"}, downloads
    assert_in_sync(account, local)

    # 4. Changes on the client reach the server.
    (local / tree_file(2)).write_bytes(b"edited locally, longer than before")
    (local / "deep/level 1/new folder").mkdir()
    (local / "deep/level 1/new folder/made here.txt").write_bytes(b"local")
    (local / tree_file(5)).rename(local / "Documents/renamed here.txt")
    (local / "spaces in folder").rename(local / "Documents/spaces moved")
    (local / tree_file(7)).unlink()
    shutil.rmtree(local / "deep/level 1/level 2")
    run = sync(account, local, home)
    assert_ok(run)
    timings["client changes up"] = run.seconds
    assert ("MOVE", "/remote.php/dav/files/desk/spaces in folder") in run.requests
    assert_in_sync(account, local)

    # 5. And quiet again.
    run = sync(account, local, home)
    assert_ok(run)
    assert run.transfers() == []
    assert "Traceback" not in ecrin_server.log_tail(100_000)
    print("nextcloudcmd timings (s):", {k: round(v, 2) for k, v in timings.items()})


def test_wrong_password_is_refused(ecrin_server: EcrinProcess, tmp_path: Path) -> None:
    account = ecrin_server.new_user("wrongpw")
    account.app_password = "not the app password"
    (tmp_path / "local").mkdir()
    run = sync(account, tmp_path / "local", tmp_path)
    assert run.returncode != 0
    assert ("GET", "/ocs/v1.php/cloud/capabilities") in run.requests
    assert not any(m == "PROPFIND" for m, _ in run.requests)


def test_chunked_file_up_then_down_into_a_new_folder(
    ecrin_server: EcrinProcess, tmp_path: Path
) -> None:
    """A quick one: a chunked file up, then down into a second, empty client folder."""
    account = ecrin_server.new_user("quick")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "sub dir").mkdir()
    (first / "sub dir/ünï.txt").write_text("unicode")
    (first / "chunked.bin").write_bytes(os.urandom(3 * 1_000_000 + 7))
    run = sync(
        account,
        first,
        tmp_path,
        OWNCLOUD_CHUNK_SIZE="1000000",
        OWNCLOUD_MIN_CHUNK_SIZE="1000000",
        OWNCLOUD_MAX_CHUNK_SIZE="1000000",
    )
    assert_ok(run)
    assert sum(1 for m, p in run.requests if m == "PUT" and "/dav/uploads/" in p) == 4
    run = sync(account, second, tmp_path)
    assert_ok(run)
    assert local_tree(first) == local_tree(second)
    assert_in_sync(account, second)
    with account.client() as dav:
        response = dav.get(f"{account.dav_root}/chunked.bin")
    assert response.headers["oc-checksum"].startswith("SHA1:")  # the client's, kept
