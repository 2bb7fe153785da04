"""Build the encryption layer from settings: KEK provider, key records, the wrapper."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import unquote, urlparse

from ecrin.core.errors import BadRequest
from ecrin.settings import Settings
from ecrin.storage.encryption.keks import KeyEncryptionKeys
from ecrin.storage.encryption.key_file import KeyFile
from ecrin.storage.encryption.records import KeyRecordStore, LocalKeyRecords, ObjectKeyRecords
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


def key_records(inner: BlobStore, settings: Settings) -> KeyRecordStore:
    """Key records live where the blobs live: beside them on disk, or in the same bucket."""
    parsed = urlparse(settings.effective_storage_url)
    if parsed.scheme == "file":
        root = Path(unquote(parsed.path)) / RECORDS_FOLDER
        return LocalKeyRecords(root, fsync=settings.fsync)
    if parsed.scheme == "s3":
        from ecrin.storage.s3 import S3BlobStore

        assert isinstance(inner, S3BlobStore)
        location = dataclasses.replace(
            inner.location, prefix=f"{inner.location.prefix}{RECORDS_FOLDER}/"
        )
        return ObjectKeyRecords(S3BlobStore(location, inner.options))
    raise BadRequest(f"encryption does not support the storage URL scheme {parsed.scheme!r}")


def encrypt_blob_store(inner: BlobStore, settings: Settings) -> EncryptedBlobStore:
    return EncryptedBlobStore(
        inner,
        key_records(inner, settings),
        keks_from_settings(settings),
        kek_id=settings.kek_id,
    )
