"""KEKs in a local key file: the default provider of the embedded profile.

The file is text, one KEK per line (`<id> <base64 of 32 bytes>`), comments start with `#`.
The last line is the default KEK for new blobs. It is created with mode 0600 at first
start, replaced atomically (temporary file, fsync, rename, directory fsync) when a KEK is
added or destroyed, and re-read when a blob names a KEK it does not know (another process,
e.g. `ecrin keys new`, may have added one while the server runs).

Wrapping is AES-256 key wrap with padding (RFC 5649), the same algorithm HSMs offer as
CKM_AES_KEY_WRAP_PAD, so key records look the same whatever the provider.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from ecrin.core.errors import Conflict, KeyUnavailable, NotFound, StorageError
from ecrin.storage.encryption.format import check_kek_id

log = logging.getLogger(__name__)

KEK_SIZE = 32
HEADER = (
    "# Ecrin key-encryption keys. WITHOUT THIS FILE, ENCRYPTED FILES CANNOT BE READ.\n"
    "# Keep a copy somewhere safe and away from the data (a backup of the data folder\n"
    "# alone is useless without it). One key per line: <id> <base64 key>; the last\n"
    "# line is the key new files use. Managed by `ecrin keys`.\n"
)


def new_kek_id() -> str:
    return "kek-" + secrets.token_hex(4)


class KeyFile:
    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._keys: dict[str, bytes] = {}

    @property
    def description(self) -> str:
        return f"key file {self.path}"

    async def open(self, *, first_start: bool) -> None:
        if not self.path.exists():
            if not first_start:
                raise KeyUnavailable(
                    f"the key file {self.path} is missing but encrypted files exist: "
                    "restore it from your backup (Ecrin will not create a new one over "
                    "existing data)"
                )
            kek_id = new_kek_id()
            self._keys = {kek_id: secrets.token_bytes(KEK_SIZE)}
            self._save()
            log.warning(
                "created the key file %s with a new key-encryption key %s; BACK IT UP NOW, "
                "away from the data: without it every encrypted file is lost",
                self.path,
                kek_id,
            )
            return
        self._load()
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "the key file %s is readable by other users (mode %o); run chmod 600 on it",
                self.path,
                mode,
            )

    async def close(self) -> None:
        self._keys = {}

    async def default_id(self) -> str:
        if not self._keys:
            raise KeyUnavailable(f"the key file {self.path} holds no key")
        return list(self._keys)[-1]

    async def ids(self) -> list[str]:
        self._load()
        return list(self._keys)

    async def wrap(self, kek_id: str, data_key: bytes) -> bytes:
        return aes_key_wrap_with_padding(self._key(kek_id), data_key)

    async def unwrap(self, kek_id: str, wrapped_key: bytes) -> bytes:
        try:
            return aes_key_unwrap_with_padding(self._key(kek_id), wrapped_key)
        except InvalidUnwrap as exc:
            raise StorageError(
                f"a data key does not unwrap under key-encryption key {kek_id}: the key "
                "record was altered or the key file is not the one it was written with"
            ) from exc

    async def create(self, kek_id: str) -> None:
        self._load()
        if check_kek_id(kek_id) in self._keys:
            raise Conflict(f"key-encryption key {kek_id} already exists")
        self._keys[kek_id] = secrets.token_bytes(KEK_SIZE)
        self._save()

    async def destroy(self, kek_id: str) -> None:
        self._load()
        if kek_id not in self._keys:
            raise NotFound(f"no key-encryption key {kek_id} in {self.path}")
        del self._keys[kek_id]
        self._save()

    def _key(self, kek_id: str) -> bytes:
        key = self._keys.get(kek_id)
        if key is None:
            self._load()  # another process may have added it
            key = self._keys.get(kek_id)
        if key is None:
            raise KeyUnavailable(
                f"key-encryption key {kek_id} is not in the key file {self.path}: it was "
                "retired, or this is not the key file the data was written with"
            )
        return key

    def _load(self) -> None:
        try:
            text = self.path.read_text("ascii")
        except FileNotFoundError as exc:
            raise KeyUnavailable(f"the key file {self.path} is missing") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyUnavailable(f"cannot read the key file {self.path}: {exc}") from exc
        keys: dict[str, bytes] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                kek_id, encoded = line.split()
                key = base64.b64decode(encoded, validate=True)
            except (ValueError, binascii.Error) as exc:
                raise KeyUnavailable(f"{self.path} line {number}: malformed key line") from exc
            if len(key) != KEK_SIZE:
                raise KeyUnavailable(f"{self.path} line {number}: a key must be 32 bytes")
            keys[check_kek_id(kek_id)] = key
        self._keys = keys

    def _save(self) -> None:
        lines = [HEADER] + [
            f"{kek_id} {base64.b64encode(key).decode('ascii')}\n"
            for kek_id, key in self._keys.items()
        ]
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = folder / f".{self.path.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write("".join(lines).encode("ascii"))
            file.flush()
            if self.fsync:
                os.fsync(file.fileno())
        os.replace(temp, self.path)
        if self.fsync:
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
