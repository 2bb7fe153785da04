"""Key-encryption keys (KEKs): the protocol every provider implements.

A KEK never leaves its provider through this interface: callers hand it a 256-bit data
key to wrap, or a wrapped key to unwrap, and name the KEK by id. The id is what an
encrypted blob's key record stores, so several KEKs (one per tenant, or old and new during
a rotation) can be in use at once, and destroying one makes exactly its blobs unreadable.
"""

from __future__ import annotations

from typing import Protocol


class KeyEncryptionKeys(Protocol):
    @property
    def description(self) -> str:
        """Where the KEKs live, for messages (never a secret)."""
        ...

    async def open(self, *, first_start: bool) -> None:
        """Check the provider is reachable; raise KeyUnavailable saying why if it is not.

        `first_start` is true when no encrypted blob exists yet: a provider may then
        create its first KEK (the key file does). It must never do so otherwise.
        """
        ...

    async def close(self) -> None: ...

    async def default_id(self) -> str:
        """The KEK new blobs use when the `kek_id` setting is empty."""
        ...

    async def ids(self) -> list[str]: ...

    async def wrap(self, kek_id: str, data_key: bytes) -> bytes: ...

    async def unwrap(self, kek_id: str, wrapped_key: bytes) -> bytes:
        """Raise KeyUnavailable if the KEK is gone, StorageError if the wrap is corrupt."""
        ...

    async def create(self, kek_id: str) -> None:
        """Make a new KEK under this id."""
        ...

    async def destroy(self, kek_id: str) -> None:
        """Delete a KEK for good: every blob wrapped under it becomes unreadable."""
        ...
