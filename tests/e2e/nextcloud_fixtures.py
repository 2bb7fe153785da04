"""A real `ecrin serve` for the sync-client tests, and tools to compare both sides.

The server runs as a subprocess on 127.0.0.1 (a free port, its own data folder); users and
app passwords are made with the `ecrin` command line, as an administrator would. Trees are
compared by the SHA-256 of every file: the local folder as the client left it, the server
as a WebDAV client reads it back (PROPFIND to walk, GET to hash). In the scale-out profile
(tests/e2e/scaleout.py) the server is 2 workers behind nginx on shared back-ends.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from lxml import etree

from tests.e2e.scaleout import SharedBackends, WorkerGroup, spawn_server
from tests.profile import scaleout_profile
from tests.support import run_ecrin

START_TIMEOUT = 60.0
NS = {"d": "DAV:"}
PROPFIND_BODY = (
    b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/>'
    b"</d:prop></d:propfind>"
)
# What the desktop clients keep next to the synced files (their journal and logs).
CLIENT_FILES = (".sync_", ".nextcloudsync.log", ".owncloudsync.log", ".sync-exclude.lst")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class EcrinProcess:
    """One `python -m ecrin serve` subprocess."""

    root: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | WorkerGroup | None = None
    backends: SharedBackends | None = field(
        default_factory=lambda: SharedBackends.create() if scaleout_profile() else None
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECRIN_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.backends.environment() if self.backends else {})
        return env

    def start(self) -> None:
        log = (self.root / "server.log").open("ab")
        command = [sys.executable, "-m", "ecrin", "serve", "--data-dir", str(self.data_dir)]
        try:
            self.process = spawn_server(command, self.port, log, self.env, self.root)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not start:\n" + self.log_tail())
            time.sleep(0.05)  # readiness polling, bounded by the deadline

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + "/status.php", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        log = self.root / "server.log"
        text = log.read_text("utf-8", "replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def ecrin(self, *args: str) -> str:
        return run_ecrin(self.data_dir, self.env, *args).stdout

    def new_user(self, name: str) -> Account:
        """A user with an app password, made the way an administrator would."""
        self.ecrin("user", "add", name, "--password", f"{name} password, long enough")
        token = self.ecrin("user", "token", "create", name, "--label", "e2e").strip()
        return Account(self, name, token.splitlines()[-1].strip())


@dataclass
class Account:
    server: EcrinProcess
    name: str
    app_password: str

    @property
    def dav_root(self) -> str:
        return f"/remote.php/dav/files/{self.name}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, auth=(self.name, self.app_password), timeout=120
        )


@pytest.fixture(scope="module")
def ecrin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcrinProcess]:
    server = EcrinProcess(tmp_path_factory.mktemp("ecrin-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if server.backends is not None:
            server.backends.destroy()


# --- trees ----------------------------------------------------------------------------------

Tree = dict[str, str]  # relative path ('a/b.txt') -> SHA-256; folders map to ''


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def local_tree(root: Path) -> Tree:
    tree: Tree = {}
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        for name in dirs:
            tree[(relative / name).as_posix()] = ""
        for name in files:
            if not name.startswith(CLIENT_FILES):
                tree[(relative / name).as_posix()] = sha256_file(Path(folder) / name)
    return {unicodedata.normalize("NFC", k): v for k, v in tree.items()}


def server_tree(account: Account, folder: str = "") -> Tree:
    """Walk the user's files below `folder` with PROPFIND and hash every file with GET."""
    tree: Tree = {}
    base = account.dav_root + ("/" + folder.strip("/") if folder.strip("/") else "")
    with account.client() as client:
        pending = [""]
        while pending:
            relative = pending.pop()
            url = base + quote("/" + relative + ("/" if relative else ""))
            response = client.request(
                "PROPFIND", url, headers={"Depth": "1"}, content=PROPFIND_BODY
            )
            assert response.status_code == 207, (url, response.status_code)
            for entry in etree.fromstring(response.content).iterfind("d:response", NS):
                path = unquote(entry.findtext("d:href", "", NS))[len(base) :].strip("/")
                if path == relative:
                    continue
                if entry.find(".//d:collection", NS) is not None:
                    tree[path] = ""
                    pending.append(path)
                else:
                    tree[path] = _download_sha256(client, base + quote("/" + path))
    return tree


def _download_sha256(client: httpx.Client, url: str) -> str:
    digest = hashlib.sha256()
    with client.stream("GET", url) as response:
        assert response.status_code == 200, (url, response.status_code)
        for block in response.iter_bytes():
            digest.update(block)
    return digest.hexdigest()


def divergences(local: Tree, remote: Tree) -> list[str]:
    found = []
    for path in sorted(set(local) | set(remote)):
        if path not in remote:
            found.append(f"only local: {path}")
        elif path not in local:
            found.append(f"only on the server: {path}")
        elif local[path] != remote[path]:
            found.append(f"contents differ: {path}")
    return found


# Names the clients must carry unchanged: spaces, accents, other scripts, emoji, URL
# metacharacters. (Nothing the desktop clients refuse: no leading/trailing spaces, none of
# \\ : ? * " < > |, no hidden files.)
NAMES = (
    "notes.txt",
    "Résumé final.txt",
    "naïve café.md",
    "日本語のファイル.txt",
    "Ελληνικά.txt",
    "emoji 🎉 party.txt",
    "a & b #1.txt",
    "100% done + more.txt",
    "it's (copy).txt",
    "semi;colon=equals.txt",
    "Ünïcødé ÆØÅ.bin",
    "report [draft].txt",
)
FOLDERS = (
    "Documents",
    "Photos 2024",
    "Ünïcødé ordner",
    "日本語",
    "deep/level 1/level 2/level 3",
    "spaces in folder/and more",
    "music & sound",
)
BIG_FILE = "Videos/big movie.bin"
BIG_SIZE = 50 * 1024 * 1024 + 123


def tree_file(index: int) -> str:
    """The relative path of the `index`th small file of `make_tree`."""
    stem, dot, suffix = NAMES[index % len(NAMES)].rpartition(".")
    return f"{FOLDERS[index % len(FOLDERS)]}/{stem} {index:03d}{dot}{suffix}"


def make_tree(root: Path, *, files: int = 520, seed: int = 1) -> None:
    """A tree of `files` small files (plus one 50 MiB file and one empty file)."""
    generator = random.Random(seed)
    folders = [Path(f) for f in FOLDERS]
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "empty folder").mkdir()
    (root / "empty file.txt").write_bytes(b"")
    for index in range(files):
        path = root / tree_file(index)
        path.write_bytes(generator.randbytes(generator.randint(1, 20_000)))
    big = root / BIG_FILE
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("wb") as handle:
        for _ in range(50):
            handle.write(generator.randbytes(1024 * 1024))
        handle.write(generator.randbytes(123))
