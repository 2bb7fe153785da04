"""Build a blob store from a storage URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from ecrin.core.errors import BadRequest
from ecrin.storage.local import LocalBlobStore
from ecrin.storage.protocol import BlobStore


def blob_store_from_url(url: str, *, fsync: bool = True) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalBlobStore(Path(unquote(parsed.path)), fsync=fsync)
    raise BadRequest(f"unsupported storage URL scheme {parsed.scheme!r} (supported: file://)")
