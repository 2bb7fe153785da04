"""Where a file's bytes are: in the blob store, or, for a small file, in its blob's row.

An upload of up to `inline_max_bytes` is read whole, and its bytes are inserted with the blob
record by the transaction that references it. One commit, whose flush concurrent writes share
(`db/group_commit.py`), then makes the file durable: no file to create, flush and rename, no
folder to flush. The bytes leave with the row when the blob loses its last reference.

Blob ids are the same 32 hex digits either way (`ShardedIds`), so `ecrin keys
encrypt-existing` can move such bytes into the store under their id (`move_into_store`);
readers look in the row first, then in the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from ecrin.core.errors import StorageError
from ecrin.db.protocol import MetadataStore
from ecrin.storage.protocol import BlobImporter, BlobStore, Piece

_P = TypeVar("_P", bound=Piece)


def read_blob(
    metadata: MetadataStore,
    store: BlobStore,
    blob_id: str,
    start: int = 0,
    end: int | None = None,
) -> AsyncIterator[bytes]:
    """Bytes [start, end) of a blob, wherever they are kept."""
    return _pieces(metadata, blob_id, start, end, lambda: store.read(blob_id, start, end))


def send_blob(metadata: MetadataStore, store: BlobStore, blob_id: str) -> AsyncIterator[Piece]:
    """A whole blob as `read_blob` gives it, in pieces only to be sent on
    (`BlobStore.read_to_send`)."""
    return _pieces(metadata, blob_id, 0, None, lambda: store.read_to_send(blob_id))


async def _pieces(
    metadata: MetadataStore,
    blob_id: str,
    start: int,
    end: int | None,
    from_store: Callable[[], AsyncIterator[_P]],
) -> AsyncIterator[bytes | _P]:
    async with metadata.read() as tx:
        content = await tx.blob_content(blob_id)
    if content is None:
        async for chunk in from_store():
            yield chunk
    elif piece := content[start:end]:
        yield piece


async def refuse_kept_in_database(metadata: MetadataStore) -> None:
    """Encryption turned on over small files kept unencrypted in the database."""
    async with metadata.read() as tx:
        if await tx.inline_blob_ids(limit=1):
            raise StorageError(
                "encryption is on but the database keeps small files' contents unencrypted: "
                "with the server stopped, run `ecrin keys encrypt-existing` first "
                "(docs/encryption.md)"
            )


async def move_into_store(
    metadata: MetadataStore,
    store: BlobImporter,
    on_moved: Callable[[int], None] | None = None,
) -> int:
    """Write every blob kept in the database into `store` under its id, then forget it in
    the database (each blob durable in the store before its row lets go); returns how many
    moved. Resumable: a blob written but not yet forgotten is written again."""
    async with metadata.read() as tx:
        blob_ids = sorted(await tx.inline_blob_ids())
    moved = 0
    for blob_id in blob_ids:
        async with metadata.read() as tx:
            content = await tx.blob_content(blob_id)
        if content is None:  # released meanwhile
            continue
        writer = await store.create_with_id(blob_id)
        try:
            await writer.write(content)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        async with metadata.write() as tx:
            await tx.clear_blob_content(blob_id)
        moved += 1
        if on_moved is not None:
            on_moved(moved)
    return moved
