"""Build the encryption layer from settings: KEK provider, key records, the wrapper."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from ecrin.core.errors import BadRequest
from ecrin.settings import Settings
from ecrin.storage.encryption.keks import KeyEncryptionKeys
from ecrin.storage.encryption.key_file import KeyFile
from ecrin.storage.encryption.records import LocalKeyRecords
from ecrin.storage.encryption.store import EncryptedBlobStore
from ecrin.storage.protocol import BlobStore

RECORDS_FOLDER = "key-records"


def keks_from_settings(settings: Settings) -> KeyEncryptionKeys:
    if settings.kek_provider == "file":
        return KeyFile(settings.effective_kek_file, fsync=settings.fsync)
    if settings.kek_provider == "pkcs11":
        from ecrin.storage.encryption.pkcs11_keks import Pkcs11Keys

        pin_file = Path(settings.pkcs11_pin_file) if settings.pkcs11_pin_file else None
        return Pkcs11Keys(settings.pkcs11_module, settings.pkcs11_token_label, pin_file=pin_file)
    raise BadRequest(f"unknown kek_provider {settings.kek_provider!r} (file or pkcs11)")


def records_root(settings: Settings) -> Path:
    """Key records sit beside the blobs on a local disk, else in the data folder."""
    parsed = urlparse(settings.effective_storage_url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)) / RECORDS_FOLDER
    return settings.data_dir / RECORDS_FOLDER


def encrypt_blob_store(inner: BlobStore, settings: Settings) -> EncryptedBlobStore:
    return EncryptedBlobStore(
        inner,
        LocalKeyRecords(records_root(settings), fsync=settings.fsync),
        keks_from_settings(settings),
        kek_id=settings.kek_id,
    )
