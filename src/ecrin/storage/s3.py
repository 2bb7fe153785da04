"""Blobs as objects in an S3 bucket (AWS S3, SeaweedFS, Ceph RGW, MinIO, Garage, …).

Client: aiobotocore, botocore (the AWS SDK core: request signing, retry modes, error model)
on asyncio, maintained by aio-libs. It exposes every call this store relies on: multipart
uploads with a Content-MD5 per part, ListMultipartUploads and AbortMultipartUpload to clean up
after a crash, and ranged GETs streamed chunk by chunk. obstore is faster but hides multipart
uploads (those a crash leaves behind cannot be listed nor aborted); boto3 would hold a thread
for every streaming read.

Layout: one object per blob, `<prefix><blob id>`. Ids are 32 random hex digits, so keys
spread evenly over the bucket's partitions.

Writing: a writer buffers at most one part (`s3_part_size`, 8 MiB by default). A blob that fits
in one part is sent by one PutObject at commit. A larger one opens a multipart upload once
its first part is full and sends every part as it fills; commit sends the last part and
CompleteMultipartUpload, the only moment the object appears: nothing partial is ever readable
or listed, so metadata can never reference it. Every body carries Content-MD5, so the
server refuses bytes damaged on the way, and the ETag that comes back is compared with our
MD5 when the server says it is one. A failure or abort() aborts the multipart upload; one a
crash leaves pending is aborted by clean_temporary() once older than the grace period.

Reading: a ranged GET streamed in 1 MiB chunks. If the connection breaks mid-stream, a new
ranged GET resumes at the next byte, with backoff.

Retries: botocore's "standard" mode, up to `s3_max_attempts` per request with exponential
backoff and jitter, on throttling, 5xx answers and connection errors.

Errors: botocore and aiohttp errors are mapped to `ecrin.core.errors` here, nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from ecrin.core.errors import (
    BadRequest,
    EcrinError,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    StorageError,
    Unavailable,
)
from ecrin.storage.protocol import Piece

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

READ_CHUNK = 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
MAX_PARTS = 10_000  # S3's ceiling
_PARTS_PER_STEP = 1000  # part size grows by one base size every 1000 parts: up to ~440 GB
# S3 may date an object put together from parts by when its upload began, not when it
# completed; list_blobs(older_than) therefore gives such objects this much more time, so
# `ecrin check` cannot take a long upload whose metadata is being committed for an orphan.
MULTIPART_AGE_MARGIN = 24 * 3600.0
_URL_OPTIONS = {"endpoint", "region", "addressing_style"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_BUSY = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "Throttling", "503"}
_FULL = {"QuotaExceeded", "XMinioStorageFull", "StorageFull"}
_CORRUPT = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"}
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where blobs go: `s3://bucket/prefix?endpoint=URL&region=NAME&addressing_style=path`."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    addressing_style: str = "auto"

    @classmethod
    def from_url(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise BadRequest(f"not an S3 storage URL: {url!r} (s3://bucket/prefix?…)")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(query) - _URL_OPTIONS)
        if unknown:
            raise BadRequest(
                f"unknown S3 URL option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_URL_OPTIONS))})"
            )
        prefix = unquote(parts.path).lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        endpoint = query.get("endpoint") or None
        style = query.get("addressing_style") or ("path" if endpoint else "auto")
        if style not in ("auto", "path", "virtual"):
            raise BadRequest("addressing_style must be auto, path or virtual")
        return cls(
            bucket=parts.netloc,
            prefix=prefix,
            endpoint=endpoint,
            region=query.get("region") or "us-east-1",
            addressing_style=style,
        )


@dataclass(frozen=True, slots=True)
class S3Options:
    access_key_id: str = ""  # empty: botocore's usual chain (AWS_* variables, config files)
    secret_access_key: str = ""
    part_size: int = 8 * 1024 * 1024
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_connections: int = 64


def _is_blob_id(name: str) -> bool:
    return len(name) >= 8 and all(c in "0123456789abcdef" for c in name)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def map_s3_error(exc: BaseException, blob_id: str | None = None) -> EcrinError:
    """The core error for a client error (the caller chains `from exc`)."""
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _MISSING and blob_id is not None:
            return StorageError(f"blob {blob_id} is missing from storage")
        if code == "NoSuchBucket":
            return StorageError("the S3 bucket does not exist")
        if code in _REFUSED:
            return StorageError(f"S3 refused the request ({code}): check the credentials")
        if code in _CORRUPT:
            return StorageError("contents were damaged on the way to S3 (checksum mismatch)")
        if code == "EntityTooLarge":
            return PayloadTooLarge("the object is too large for the S3 server")
        if code in _FULL:
            return QuotaExceeded("the storage is full")
        if code in _BUSY:
            return Unavailable(f"S3 is busy ({code}); retry")
        return StorageError(f"S3 error {code or 'without a code'}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError("no S3 credentials: set s3_access_key_id and s3_secret_access_key")
    return Unavailable(f"S3 is unreachable ({type(exc).__name__})")


@contextmanager
def s3_errors(blob_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise map_s3_error(exc, blob_id) from exc


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _check_etag(response: Any, expected: str) -> None:
    """Compare an ETag with the MD5 we sent, when the server says the ETag is an MD5.

    With SSE-KMS or SSE-C the ETag is something else; the server already checked our
    Content-MD5 on the way in, so there is nothing more to compare then.
    """
    etag = str(response.get("ETag") or "").strip('"')
    if not etag or response.get("ServerSideEncryption") not in (None, "AES256"):
        return
    if response.get("SSECustomerAlgorithm"):
        return
    if etag != expected:
        raise StorageError(f"S3 stored something else than we sent (ETag {etag} != {expected})")


class S3BlobWriter:
    def __init__(self, store: S3BlobStore, blob_id: str) -> None:
        self._store = store
        self._client = store.client
        self._blob_id = blob_id
        self._key = store.key(blob_id)
        self._buffer = bytearray()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._digests: list[bytes] = []
        self._finished = False

    @property
    def size(self) -> int:
        return self._size

    def _part_size(self) -> int:
        base = self._store.options.part_size
        return base * (1 + len(self._parts) // _PARTS_PER_STEP)

    async def write(self, data: bytes) -> None:
        if self._finished:
            raise StorageError("write after commit or abort")
        self._buffer += data
        self._size += len(data)
        # Send a part only when more bytes follow it: a blob of one part is one PutObject.
        while len(self._buffer) > self._part_size():
            size = self._part_size()
            with memoryview(self._buffer) as view:  # one copy of the part, not two
                part = bytes(view[:size])
            del self._buffer[:size]
            await self._guarded(self._send_part(part))

    async def _guarded(self, work: Any) -> Any:
        """Run a step; on failure, abort the upload (best effort) and raise the mapped error."""
        try:
            with s3_errors():
                return await work
        except BaseException:
            with suppress(EcrinError):
                await self.abort()
            raise

    async def _send_part(self, part: bytes) -> None:
        if len(self._parts) >= MAX_PARTS:
            raise PayloadTooLarge("the file has more parts than S3 allows")
        bucket = self._store.location.bucket
        if self._upload_id is None:
            created = await self._client.create_multipart_upload(Bucket=bucket, Key=self._key)
            self._upload_id = created["UploadId"]
        digest = await asyncio.to_thread(_md5, part)
        number = len(self._parts) + 1
        sent = await self._client.upload_part(
            Bucket=bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=part,
            ContentLength=len(part),
            ContentMD5=base64.b64encode(digest).decode(),
        )
        _check_etag(sent, digest.hex())
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})
        self._digests.append(digest)

    async def commit(self) -> str:
        if self._finished:
            raise StorageError("commit after commit or abort")
        if self._upload_id is None:
            await self._guarded(self._put_whole())
        else:
            if self._buffer:
                part, self._buffer = bytes(self._buffer), bytearray()
                await self._guarded(self._send_part(part))
            await self._guarded(self._complete())
        self._finished = True
        self._buffer = bytearray()
        return self._blob_id

    async def _put_whole(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        digest = await asyncio.to_thread(_md5, data)
        sent = await self._client.put_object(
            Bucket=self._store.location.bucket,
            Key=self._key,
            Body=data,
            ContentLength=len(data),
            ContentMD5=base64.b64encode(digest).decode(),
        )
        _check_etag(sent, digest.hex())

    async def _complete(self) -> None:
        assert self._upload_id is not None
        bucket = self._store.location.bucket
        done: Mapping[str, Any]
        try:
            done = await self._client.complete_multipart_upload(
                Bucket=bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except ClientError as exc:
            # A retried Complete whose first attempt succeeded finds no upload any more.
            if _error_code(exc) != "NoSuchUpload" or not await self._store.exists(self._blob_id):
                raise
            done = {}
        expected = hashlib.md5(b"".join(self._digests), usedforsecurity=False).hexdigest()
        _check_etag(done, f"{expected}-{len(self._parts)}")
        head = await self._client.head_object(Bucket=bucket, Key=self._key)
        if head["ContentLength"] != self._size:
            raise StorageError(f"S3 assembled {head['ContentLength']} bytes of {self._size}")
        self._upload_id = None

    async def abort(self) -> None:
        self._finished = True
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            await self._store.abort_upload(self._key, upload_id)


class S3BlobStore:
    def __init__(self, location: S3Location, options: S3Options | None = None) -> None:
        self.location = location
        self.options = options or S3Options()
        if self.options.part_size < MIN_PART_SIZE:
            raise BadRequest(f"s3_part_size must be at least {MIN_PART_SIZE} bytes")
        self._stack: AsyncExitStack | None = None
        self._client: S3Client | None = None

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise StorageError("the S3 blob store is not open")
        return self._client

    def key(self, blob_id: str) -> str:
        if not _is_blob_id(blob_id):
            raise NotFound("no such blob")
        return self.location.prefix + blob_id

    async def open(self) -> None:
        if self._client is not None:
            return
        options = self.options
        config = AioConfig(
            region_name=self.location.region,
            signature_version="s3v4",
            s3={"addressing_style": self.location.addressing_style},
            retries={"max_attempts": options.max_attempts, "mode": "standard"},
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_pool_connections=options.max_connections,
            # We send Content-MD5 ourselves; not every S3 server takes the newer checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = AsyncExitStack()
        client: S3Client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=self.location.endpoint,
                aws_access_key_id=options.access_key_id or None,
                aws_secret_access_key=options.secret_access_key or None,
                config=config,
            )
        )
        try:
            with s3_errors():
                await client.head_bucket(Bucket=self.location.bucket)
        except EcrinError as error:
            await stack.aclose()
            cause = error.__cause__
            if isinstance(cause, ClientError) and _error_code(cause) in _MISSING:
                raise StorageError(
                    f"the S3 bucket {self.location.bucket!r} does not exist"
                ) from cause
            raise
        self._stack, self._client = stack, client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def create(self) -> S3BlobWriter:
        return S3BlobWriter(self, secrets.token_hex(16))

    async def create_with_id(self, blob_id: str) -> S3BlobWriter:
        self.key(blob_id)  # refuses an id that is not one of ours
        return S3BlobWriter(self, blob_id)

    def read_to_send(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[Piece]:
        return self.read(blob_id, start, end)

    async def read(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        key = self.key(blob_id)
        client = self.client
        position, failures = start, 0
        while end is None or position < end:
            request: dict[str, Any] = {"Bucket": self.location.bucket, "Key": key}
            if position or end is not None:
                last = "" if end is None else str(end - 1)
                request["Range"] = f"bytes={position}-{last}"
            try:
                with s3_errors(blob_id):
                    response = await client.get_object(**request)
            except StorageError as error:
                cause = error.__cause__
                if isinstance(cause, ClientError) and _error_code(cause) == "InvalidRange":
                    return  # the range starts at or past the end of the blob
                raise
            body = response["Body"]
            try:
                async for chunk in body.iter_chunks(READ_CHUNK):
                    position += len(chunk)
                    failures = 0
                    yield chunk
                return
            except (aiohttp.ClientError, BotoCoreError, TimeoutError) as exc:
                failures += 1
                if failures >= self.options.max_attempts:
                    raise map_s3_error(exc, blob_id) from exc
                await asyncio.sleep(min(20.0, 0.1 * 2**failures) * random.uniform(0.5, 1.0))
            finally:
                body.close()

    async def delete(self, blob_id: str) -> None:
        if not _is_blob_id(blob_id):
            return
        with s3_errors(blob_id):
            await self.client.delete_object(Bucket=self.location.bucket, Key=self.key(blob_id))

    async def exists(self, blob_id: str) -> bool:
        if not _is_blob_id(blob_id):
            return False
        try:
            await self.client.head_object(Bucket=self.location.bucket, Key=self.key(blob_id))
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return False
            raise map_s3_error(exc, blob_id) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_s3_error(exc, blob_id) from exc
        return True

    async def list_blobs(self, older_than: float | None = None) -> AsyncIterator[str]:
        prefix = self.location.prefix
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=prefix, Delimiter="/"
        )
        with s3_errors():
            async for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(prefix) :]
                    if not _is_blob_id(name):
                        continue
                    if older_than is not None:
                        limit = older_than
                        if "-" in item.get("ETag", ""):  # assembled from parts
                            limit -= MULTIPART_AGE_MARGIN
                        if item["LastModified"].timestamp() >= limit:
                            continue
                    yield name

    async def clean_temporary(self, older_than: float) -> list[str]:
        """Abort multipart uploads a crash left pending; returns their blob ids."""
        prefix = self.location.prefix
        stale: list[tuple[str, str]] = []
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.location.bucket, Prefix=prefix
        )
        with s3_errors():
            async for page in pages:
                for upload in page.get("Uploads", []):
                    key, upload_id = upload.get("Key", ""), upload.get("UploadId", "")
                    initiated = upload.get("Initiated")
                    if not _is_blob_id(key[len(prefix) :]) or initiated is None:
                        continue
                    if initiated.timestamp() < older_than:
                        stale.append((key, upload_id))
        for key, upload_id in stale:
            await self.abort_upload(key, upload_id)
        return [key[len(prefix) :] for key, _ in stale]

    async def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            with s3_errors():
                await self.client.abort_multipart_upload(
                    Bucket=self.location.bucket, Key=key, UploadId=upload_id
                )
        except StorageError as error:
            cause = error.__cause__
            if not (isinstance(cause, ClientError) and _error_code(cause) == "NoSuchUpload"):
                raise
