"""What only the S3 store has: its URL, its error mapping, bounded buffering, and reads that
survive a connection cut mid-stream (through a real TCP proxy on loopback)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from ecrin.core.errors import BadRequest, StorageError
from ecrin.settings import Settings
from ecrin.storage.factory import blob_store_from_url
from ecrin.storage.s3 import MIN_PART_SIZE, S3BlobStore, S3Location, S3Options
from tests.backends import empty_s3_prefix, s3_test_location


def test_url() -> None:
    location = S3Location.from_url(
        "s3://bucket/some/prefix?endpoint=http://127.0.0.1:8333&region=eu-west-3"
    )
    assert location == S3Location(
        bucket="bucket",
        prefix="some/prefix/",
        endpoint="http://127.0.0.1:8333",
        region="eu-west-3",
        addressing_style="path",
    )
    assert S3Location.from_url("s3://bucket") == S3Location("bucket", addressing_style="auto")
    for bad in ("s3:///prefix", "s3://b/?color=blue", "s3://b/?addressing_style=sideways"):
        with pytest.raises(BadRequest):
            S3Location.from_url(bad)


def test_factory_takes_keys_and_tuning_from_settings() -> None:
    settings = Settings(
        s3_access_key_id="id", s3_secret_access_key="secret", s3_part_size=6 * 1024 * 1024
    )
    store = blob_store_from_url("s3://bucket/p?endpoint=http://127.0.0.1:1", settings=settings)
    assert isinstance(store, S3BlobStore)
    assert store.options.access_key_id == "id" and store.options.part_size == 6 * 1024 * 1024
    with pytest.raises(BadRequest):
        S3BlobStore(S3Location("bucket"), S3Options(part_size=1024))


@pytest.fixture
async def s3() -> AsyncIterator[tuple[S3Location, S3Options]]:
    url, key_id, secret = s3_test_location()
    yield S3Location.from_url(url), S3Options(key_id, secret, part_size=MIN_PART_SIZE)
    await empty_s3_prefix(url, key_id, secret)


async def test_wrong_keys_or_bucket_fail_at_open(s3: tuple[S3Location, S3Options]) -> None:
    location, options = s3
    for store, problem in (
        (S3BlobStore(location, dataclasses.replace(options, secret_access_key="x")), "refused"),
        (S3BlobStore(dataclasses.replace(location, bucket="no-such-bucket"), options), "exist"),
    ):
        with pytest.raises(StorageError, match=problem):
            await store.open()
        await store.close()


async def test_a_writer_holds_at_most_one_part(s3: tuple[S3Location, S3Options]) -> None:
    store = S3BlobStore(*s3)
    await store.open()
    try:
        writer = await store.create()
        piece = os.urandom(1024 * 1024)
        for _ in range(12):
            await writer.write(piece)
            assert len(writer._buffer) <= MIN_PART_SIZE + len(piece)
        blob_id = await writer.commit()
        assert len(writer._parts) == 3  # 5 + 5 MiB sent as they filled, 2 MiB at commit
        assert sum([len(c) async for c in store.read(blob_id)]) == 12 * len(piece)
    finally:
        await store.close()


async def test_a_read_cut_mid_stream_resumes(s3: tuple[S3Location, S3Options]) -> None:
    location, options = s3
    assert location.endpoint is not None
    upstream = urlsplit(location.endpoint)
    cuts = 0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: bool) -> None:
        nonlocal cuts
        sent = 0
        try:
            while data := await reader.read(65536):
                if cut and cuts == 0 and sent + len(data) > 3 * 1024 * 1024:
                    cuts += 1  # the first large answer breaks after 3 MiB
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()
                sent += len(data)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(upstream.hostname, upstream.port)
        await asyncio.gather(pipe(client_r, server_w, False), pipe(server_r, client_w, True))

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    direct = S3BlobStore(location, options)
    through_proxy = S3BlobStore(
        dataclasses.replace(location, endpoint=f"http://127.0.0.1:{port}"), options
    )
    await direct.open()
    await through_proxy.open()
    try:
        data = os.urandom(8 * 1024 * 1024)
        writer = await direct.create()
        await writer.write(data)
        blob_id = await writer.commit()
        read = b"".join([chunk async for chunk in through_proxy.read(blob_id)])
        assert cuts == 1
        assert read == data
    finally:
        await through_proxy.close()
        await direct.close()
        proxy.close()
        await proxy.wait_closed()


async def test_objects_from_parts_get_more_time_before_they_count_as_old(
    s3: tuple[S3Location, S3Options],
) -> None:
    import time

    from ecrin.storage.s3 import MULTIPART_AGE_MARGIN

    store = S3BlobStore(*s3)
    await store.open()
    try:
        small = await store.create()
        await small.write(b"small")
        small_id = await small.commit()
        large = await store.create()
        await large.write(os.urandom(MIN_PART_SIZE + 1))
        large_id = await large.commit()
        soon = time.time() + 60
        assert {b async for b in store.list_blobs(older_than=soon)} == {small_id}
        later = soon + MULTIPART_AGE_MARGIN
        assert {b async for b in store.list_blobs(older_than=later)} == {small_id, large_id}
    finally:
        await store.close()
