"""The metadata store protocol: what every metadata backend (SQLite, PostgreSQL) provides.

A store hands out transactions. Everything done through one transaction commits atomically
or not at all; the services compose these primitives into the product's operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ecrin.core.model import AppPassword, DeadProperty, Lock, Node, NodeKind, User


class MetadataTransaction(Protocol):
    async def insert_user(
        self,
        name: str,
        display_name: str,
        password_hash: str,
        quota_bytes: int | None,
        is_admin: bool,
        now: float,
    ) -> User: ...

    async def user_by_name(self, name: str) -> User | None: ...

    async def user_by_id(self, user_id: int) -> User | None: ...

    async def list_users(self) -> list[User]: ...

    async def user_count(self) -> int: ...

    async def password_hash(self, user_id: int) -> str | None: ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    async def set_quota(self, user_id: int, quota_bytes: int | None) -> None: ...

    async def add_usage(self, user_id: int, delta: int) -> None: ...

    async def set_usage(self, user_id: int, used_bytes: int) -> None: ...

    async def root_node(self, user_id: int) -> Node: ...

    async def delete_user(self, user_id: int) -> list[str]:
        """Delete a user and everything they own; returns blob ids no longer referenced."""

    async def insert_app_password(
        self, user_id: int, name: str, token_hash: str, now: float
    ) -> AppPassword: ...

    async def list_app_passwords(self, user_id: int) -> list[AppPassword]: ...

    async def delete_app_password(self, user_id: int, password_id: int) -> bool: ...

    async def app_password_user(self, user_id: int, token_hash: str) -> AppPassword | None: ...

    async def touch_app_password(self, password_id: int, now: float) -> None: ...

    async def node(self, node_id: int) -> Node | None: ...

    async def child(self, parent_id: int, name: str) -> Node | None: ...

    async def children(self, parent_id: int) -> list[Node]: ...

    async def insert_node(
        self,
        *,
        parent_id: int | None,
        owner_id: int,
        name: str,
        kind: NodeKind,
        size: int,
        mtime: float,
        now: float,
        blob_id: str | None = None,
        sha256: str | None = None,
        content_type: str | None = None,
        checksums: str | None = None,
    ) -> Node: ...

    async def update_file(
        self,
        node_id: int,
        *,
        size: int,
        mtime: float,
        blob_id: str,
        sha256: str,
        content_type: str | None,
        checksums: str | None,
    ) -> None: ...

    async def set_mtime(self, node_id: int, mtime: float) -> None: ...

    async def move_node(self, node_id: int, new_parent_id: int, new_name: str) -> None: ...

    async def bump_revisions(self, node_ids: Iterable[int], size_delta: int = 0) -> None:
        """Mark folders changed (new etag) and add `size_delta` to their recursive size."""

    async def subtree(self, node_id: int) -> list[tuple[Node, tuple[str, ...]]]:
        """The node and all its descendants, parents before children, with relative paths."""

    async def delete_subtree(self, node_id: int) -> list[str]:
        """Delete a node and its descendants; returns blob ids whose refcount fell to 0."""

    async def insert_blob(self, blob_id: str, size: int, sha256: str, now: float) -> None: ...

    async def retain_blob(self, blob_id: str) -> None: ...

    async def release_blob(self, blob_id: str) -> list[str]:
        """Drop one reference; returns [blob_id] if it was the last one (row removed)."""

    async def blob_records(self) -> dict[str, tuple[int, str, int]]:
        """Every blob row: id -> (size, sha256, refcount)."""

    async def blob_reference_counts(self) -> dict[str, int]:
        """How many file nodes actually reference each blob."""

    async def set_blob_refcount(self, blob_id: str, refcount: int) -> None: ...

    async def usage_by_user(self) -> dict[int, int]: ...

    async def properties(self, node_id: int) -> list[DeadProperty]: ...

    async def properties_of(self, node_ids: Sequence[int]) -> dict[int, list[DeadProperty]]: ...

    async def set_property(self, node_id: int, prop: DeadProperty) -> None: ...

    async def remove_property(self, node_id: int, namespace: str, name: str) -> None: ...

    async def locks(self, owner_id: int, now: float) -> list[Lock]: ...

    async def insert_lock(self, lock: Lock) -> None: ...

    async def refresh_lock(self, token: str, timeout_seconds: int, expires_at: float) -> None: ...

    async def delete_lock(self, token: str) -> bool: ...

    async def delete_expired_locks(self, now: float) -> None: ...


class MetadataStore(Protocol):
    async def open(self) -> None:
        """Create or upgrade the schema."""

    async def close(self) -> None: ...

    def read(self) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A consistent read-only snapshot."""
        ...

    def write(self) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A write transaction, committed when the block exits without error."""
        ...
