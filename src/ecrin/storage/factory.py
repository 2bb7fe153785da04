"""Build a blob store from a storage URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from ecrin.core.errors import BadRequest
from ecrin.settings import Settings
from ecrin.storage.local import LocalBlobStore
from ecrin.storage.protocol import BlobStore


def blob_store_from_url(
    url: str, *, fsync: bool = True, settings: Settings | None = None
) -> BlobStore:
    """`file:///path` or `s3://bucket/prefix?endpoint=…&region=…` (S3 keys and tuning come
    from `settings`)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalBlobStore(Path(unquote(parsed.path)), fsync=fsync)
    if parsed.scheme == "s3":
        try:
            from ecrin.storage.s3 import S3BlobStore, S3Location, S3Options
        except ImportError as exc:  # the optional dependency is missing
            raise BadRequest("S3 storage needs the s3 extra: pip install 'ecrin[s3]'") from exc
        settings = settings or Settings()
        options = S3Options(
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            part_size=settings.s3_part_size,
            max_attempts=settings.s3_max_attempts,
        )
        return S3BlobStore(S3Location.from_url(url), options)
    raise BadRequest(
        f"unsupported storage URL scheme {parsed.scheme!r} (supported: file://, s3://)"
    )
