"""The blob store protocol every contents backend implements.

Blobs are immutable. A writer streams bytes into a temporary place; `commit()` makes the
blob durable (flushed to stable storage) and addressable under a new id, which only then
may be referenced by metadata. An uncommitted or aborted writer leaves nothing visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

# What a blob's reader for a response hands out: bytes, or a view of a file's pages mapped in
# memory (which the socket copies from directly: one copy of each byte fewer).
Piece = bytes | memoryview


class BlobWriter(Protocol):
    @property
    def size(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> str:
        """Make the blob durable and return its id."""
        ...

    async def abort(self) -> None: ...


class BlobStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self) -> BlobWriter: ...

    def read(self, blob_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of a blob (end None: to the end)."""
        ...

    def read_to_send(
        self, blob_id: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[Piece]:
        """What `read` gives, for pieces passed straight on to a response: a store may hand
        out views of memory it maps, valid as long as they are referenced and never changed."""
        ...

    async def delete(self, blob_id: str) -> None:
        """Remove a blob; removing a missing blob is not an error."""
        ...

    async def exists(self, blob_id: str) -> bool: ...

    def list_blobs(self, older_than: float | None = None) -> AsyncIterator[str]:
        """Every committed blob id (optionally only those last written before a time)."""
        ...

    async def clean_temporary(self, older_than: float) -> list[str]:
        """Remove unfinished writes left by a crash; returns what was removed."""
        ...


@runtime_checkable
class BlobImporter(Protocol):
    """A store that can take a blob under an id chosen elsewhere.

    Copying blobs between stores (`ecrin storage migrate`) keeps their ids, so metadata needs
    no change. The writer behaves like `create()`'s: nothing is visible before `commit()`.
    """

    async def create_with_id(self, blob_id: str) -> BlobWriter: ...
